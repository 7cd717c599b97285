"""``bengaliai kernel --push``: upload the weights dataset (new, or a new version) and then push the kernel.

A training kernel (``bengaliai kernel --train --push``) has no dataset: only the kernel is pushed. All go through the ``kaggle`` package with the user's credentials (bengaliai.kaggle.download
authenticates), each call quiet, each failure one BengaliaiError that says what failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bengaliai.core.errors import BengaliaiError
from bengaliai.kaggle.download import authenticate, kaggle_api, quietly
from bengaliai.kaggle.kernel import PLACEHOLDER_USER, KernelBuild
from bengaliai.kaggle.train_kernel import TrainKernelBuild

log = logging.getLogger(__name__)


def push_kernel(build: KernelBuild, api_factory: Callable[[], Any] | None = None) -> None:
    """Upload the weights dataset (new, or a new version) and then push the kernel.

    ``api_factory`` returns an unauthenticated KaggleApi-like object (tests pass a fake one).
    Without credentials, raises one BengaliaiError that says how to provide them.
    """
    if build.dataset_id.startswith(PLACEHOLDER_USER + "/"):
        raise BengaliaiError(f"the build names no Kaggle user ({build.dataset_id}); build it again with --user NAME")
    api = (api_factory or kaggle_api)()
    authenticate(api)
    try:
        exists = _dataset_exists(api, build.dataset_id)
        if exists:
            log.info("uploading a new version of %s", build.dataset_id)
            response = quietly(
                lambda: api.dataset_create_version(str(build.dataset_dir), "bengaliai kernel", dir_mode="skip", convert_to_csv=False)
            )
        else:
            log.info("creating the dataset %s", build.dataset_id)
            response = quietly(
                lambda: api.dataset_create_new(str(build.dataset_dir), public=False, dir_mode="skip", convert_to_csv=False)
            )
        _check_response(response, f"uploading {build.dataset_id}")
        _push_folder(api, build.kernel_dir, build.kernel_id)
    except BengaliaiError:
        raise
    except (Exception, SystemExit) as error:  # the kaggle client raises whatever requests raises
        raise BengaliaiError(f"Kaggle push failed ({type(error).__name__}: {error})") from None
    log.info("pushed: https://www.kaggle.com/code/%s (the dataset may take a minute to process first)", build.kernel_id)


def push_train_kernel(build: TrainKernelBuild, api_factory: Callable[[], Any] | None = None) -> None:
    """Push the training kernel: a new version starts on Kaggle at once.

    ``api_factory`` as for push_kernel; without credentials, one BengaliaiError says how to provide them.
    """
    if build.kernel_id.startswith(PLACEHOLDER_USER + "/"):
        raise BengaliaiError(f"the build names no Kaggle user ({build.kernel_id}); build it again with --user NAME")
    api = (api_factory or kaggle_api)()
    authenticate(api)
    try:
        _push_folder(api, build.kernel_dir, build.kernel_id)
    except BengaliaiError:
        raise
    except (Exception, SystemExit) as error:  # the kaggle client raises whatever requests raises
        raise BengaliaiError(f"Kaggle push failed ({type(error).__name__}: {error})") from None
    log.info("pushed: https://www.kaggle.com/code/%s; when it has finished: bengaliai pull %s --out runs",
             build.kernel_id, build.kernel_id)


def _push_folder(api: Any, kernel_dir: Path, kernel_id: str) -> None:
    log.info("pushing the kernel %s", kernel_id)
    response = quietly(lambda: api.kernels_push(str(kernel_dir)))
    _check_response(response, f"pushing {kernel_id}")


def _dataset_exists(api: Any, dataset_id: str) -> bool:
    try:
        quietly(lambda: api.dataset_status(dataset_id))
    except (Exception, SystemExit):
        return False
    return True


def _check_response(response: Any, what: str) -> None:
    error = getattr(response, "error", None)
    if response is None or error:
        raise BengaliaiError(f"{what} failed: {error or 'no response from Kaggle'}")
