"""The warehouse's data contract: one pandera DataFrameModel per table (``tables``), and the
checks every API record must pass before it becomes a row (``wire``).

Imported as ``bankconnect_etl.schemas`` (``pyproject.toml`` maps this folder there).
``docs/data-dictionary.md`` is generated from these models: ``bankconnect-etl dictionary``.
"""

from bankconnect_etl.schemas.tables import TABLES, TableSpec

__all__ = ["TABLES", "TableSpec"]
