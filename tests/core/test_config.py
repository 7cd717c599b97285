"""Configuration: defaults in code, YAML per experiment, --set overrides, strict checking."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from bengaliai.core.config import from_dict, load_config, to_dict
from bengaliai.core.errors import BengaliaiError


@dataclass(frozen=True)
class Optim:
    name: Literal["adamw", "sgd"] = "adamw"
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)


@dataclass(frozen=True)
class Experiment:
    name: str = "baseline"
    epochs: int = 10
    pretrained: str | None = None
    channels_last: bool = True
    optim: Optim = field(default_factory=Optim)


def test_defaults_yaml_and_overrides_apply_in_order(tmp_path: Path) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text("name: r34\nepochs: 3\noptim:\n  lr: 0.01\n")
    config = load_config(Experiment, path, ["optim.lr=2e-3", "optim.name=sgd", "pretrained=w.pth"])
    assert config == Experiment(name="r34", epochs=3, pretrained="w.pth", optim=Optim(name="sgd", lr=2e-3))
    assert load_config(Experiment) == Experiment()


def test_round_trip_through_dict() -> None:
    config = Experiment(optim=Optim(betas=(0.5, 0.9)))
    assert from_dict(Experiment, to_dict(config)) == config


def test_ints_become_floats_and_lists_tuples() -> None:
    config = load_config(Experiment, None, ["optim.lr=1", "optim.betas=[0.8, 0.99]"])
    assert config.optim.lr == 1.0 and isinstance(config.optim.lr, float)
    assert config.optim.betas == (0.8, 0.99)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "unknown key 'lrr'"),
        ("epochs=many", "expected int"),
        ("epochs=true", "expected a number"),
        ("optim.name=adam", "'adam' is not one of 'adamw', 'sgd'"),
        ("channels_last=1", "expected true or false"),
        ("epochs", "expected key=value"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(BengaliaiError, match=message):
        load_config(Experiment, None, [override])


def test_bad_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: [1\n")
    with pytest.raises(BengaliaiError, match="bad.yaml: not valid YAML"):
        load_config(Experiment, path)
    with pytest.raises(BengaliaiError, match="config file not found"):
        load_config(Experiment, tmp_path / "missing.yaml")


def test_to_dict_is_plain_yaml() -> None:
    import yaml

    data = to_dict(Experiment())
    assert data["optim"]["betas"] == [0.9, 0.999]
    assert from_dict(Experiment, yaml.safe_load(yaml.safe_dump(data))) == Experiment()


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiment_configs_load(path: Path) -> None:
    from bengaliai.training.train import TrainConfig

    config = load_config(TrainConfig, path)
    assert config.experiment == path.stem


@pytest.mark.parametrize("option", ["--set", "--letterform-set"])
def test_malformed_yaml_in_an_override_is_one_line_naming_the_option_and_value(option: str) -> None:
    with pytest.raises(BengaliaiError) as error:
        load_config(Experiment, None, ["optim.betas=[0.1,"], option=option)
    message = str(error.value)
    assert message.startswith(f"{option} 'optim.betas=[0.1,': the value [0.1, is not valid YAML (")
    assert "\n" not in message
    for override, expected in [("optim.lrr=1", "unknown key 'lrr'"), ("epochs", "expected key=value")]:
        with pytest.raises(BengaliaiError, match=f"^{option} .*{expected}"):
            load_config(Experiment, None, [override], option=option)


def test_bad_yaml_in_a_file_is_one_line_with_the_place(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: r34\nepochs: [1\n")
    with pytest.raises(BengaliaiError) as error:
        load_config(Experiment, path)
    assert str(error.value).startswith(f"{path}: not valid YAML at line ")
    assert "\n" not in str(error.value)
