"""Per-customer parameter files (``<customer>.bicepparam``): where they live, and the mistakes
caught before anything is deployed.

The files may live outside the repository, so customer names need not be committed:
``--customers-dir DIR``, else the ``SCIM_CUSTOMERS_DIR`` environment variable, else
``infra/customers``. A file is refused when

- its ``customerName`` differs from its file name (copying contoso.bicepparam to
  fabrikam.bicepparam and forgetting the name would deploy contoso's resource names into
  fabrikam's resource group), or
- its ``using`` line does not name this repository's ``infra/main.bicep`` (a file copied out of
  the repository keeps ``using '../main.bicep'``, which then points nowhere, or at another
  checkout's template).

Both are read with a regular expression: Bicep itself is not available to the tool (the az CLI
compiles the file only during the deployment, and a dry run never calls it).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

INFRA = Path(__file__).resolve().parent
MAIN_TEMPLATE = INFRA / "main.bicep"
DEFAULT_DIR = INFRA / "customers"
#: Environment variable naming the directory of the per-customer parameter files.
DIR_SETTING = "SCIM_CUSTOMERS_DIR"

_CUSTOMER_NAME = re.compile(r"^\s*param\s+customerName\s*=\s*'([^']*)'", re.MULTILINE)
_USING = re.compile(r"^\s*using\s+'([^']+)'", re.MULTILINE)


class ParameterFileError(SystemExit):
    """A parameter file that must not be deployed; the message says how to fix it."""


def customers_dir(option: str | None) -> Path:
    """The directory of the parameter files: the option, the setting, or infra/customers."""
    chosen = option or os.environ.get(DIR_SETTING)
    return Path(chosen).expanduser().resolve() if chosen else DEFAULT_DIR


def parameter_file(customer: str, directory: Path) -> Path:
    """``<directory>/<customer>.bicepparam``, checked (see the module docstring)."""
    path = directory / f"{customer}.bicepparam"
    if not path.is_file():
        raise ParameterFileError(
            f"{path} does not exist: copy infra/customers/contoso.bicepparam and adjust it "
            f"(or point --customers-dir / ${DIR_SETTING} at the directory that holds it)."
        )
    text = path.read_text(encoding="utf-8")
    declared = _CUSTOMER_NAME.search(text)
    if declared is None:
        raise ParameterFileError(
            f"{path} sets no customerName: add param customerName = '{customer}'."
        )
    if declared.group(1) != customer:
        raise ParameterFileError(
            f"{path} sets customerName = '{declared.group(1)}', but its file name says "
            f"'{customer}': the resource names would be {declared.group(1)}'s. Set "
            f"param customerName = '{customer}' (or rename the file)."
        )
    using = _USING.search(text)
    target = (path.parent / using.group(1)).resolve() if using else None
    if target != MAIN_TEMPLATE:
        named = using.group(1) if using else "nothing"
        raise ParameterFileError(
            f"{path}: its using line names {named!r}, not this repository's template "
            f"{MAIN_TEMPLATE}. Write using '{os.path.relpath(MAIN_TEMPLATE, path.parent)}'."
        )
    return path
