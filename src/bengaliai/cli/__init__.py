"""The ``bengaliai`` command line (also ``python -m bengaliai``): one subcommand per pipeline stage.

Modules: ``main`` (the parser, logging, exit codes), ``data_commands`` (download, import, prepare,
folds), ``synth_commands`` (synth), ``model_commands`` (train, oof, leaderboard, predict, kernel, demo), ``kaggle_commands``
(``kernel --train``'s options and ``pull``), ``options``
(shared option types), ``demo`` (``make demo``). The top layer: the only one that may import every
stage, and it does so only when a subcommand runs. A new command goes into ``data_commands``,
``synth_commands`` or ``model_commands`` beside the function it runs, and into ``main.SUBCOMMANDS``.
"""
