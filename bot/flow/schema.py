"""`carebot schema`: the JSON Schema of flow files, for editors (yaml-language-server) and CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from bot.flow.model import Flow, FlowFile


def flow_schema() -> dict[str, Any]:
    schema = TypeAdapter(Flow | FlowFile).json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "carebot flow file"
    schema["description"] = ("One flow (id, steps …) or several under `flows:`. "
                             "Add `# yaml-language-server: $schema=schema.json` to a flow file for completion.")
    return schema


def write_schema(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(flow_schema(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
