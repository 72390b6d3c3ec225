"""`openapi` check: call every route the app's OpenAPI document says is safe to call, and
validate each JSON response against its declared schema."""

from __future__ import annotations

from typing import Any

import httpx
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from shiplane.config.checks import OpenApiCheck
from shiplane.verify.http import client
from shiplane.verify.target import CheckFailed, Target, excerpt


def _example(param: dict[str, Any]) -> Any:
    if "example" in param:
        return param["example"]
    schema = param.get("schema", {})
    if "example" in schema:
        return schema["example"]
    examples = param.get("examples") or {}
    for item in examples.values():
        if isinstance(item, dict) and "value" in item:
            return item["value"]
    return None


def callable_routes(document: dict[str, Any], exclude: list[str]) -> list[tuple[str, str]]:
    """(declared path, concrete path) of GET routes without required params, or with examples."""
    routes = []
    for path, item in sorted((document.get("paths") or {}).items()):
        if path in exclude or "get" not in item:
            continue
        params = [*(item.get("parameters") or []), *(item["get"].get("parameters") or [])]
        concrete, query, ok = path, {}, True
        for param in params:
            value = _example(param)
            if value is None:
                if param.get("required") or param.get("in") == "path":
                    ok = False
                continue
            if param.get("in") == "path":
                concrete = concrete.replace("{" + param["name"] + "}", str(value))
            elif param.get("in") == "query":
                query[param["name"]] = value
        if ok:
            suffix = "?" + str(httpx.QueryParams(query)) if query else ""
            routes.append((path, concrete + suffix))
    return routes


def _schema_for(document: dict[str, Any], path: str, status: int) -> dict[str, Any] | None:
    responses = document["paths"][path]["get"].get("responses", {})
    declared = (
        responses.get(str(status))
        or responses.get(f"{str(status)[0]}XX")
        or responses.get("default")
    )
    if not declared:
        return None
    schema = (declared.get("content") or {}).get("application/json", {}).get("schema")
    if schema is None:
        return None
    # $refs like #/components/schemas/Note resolve against this root.
    return {**schema, "components": document.get("components", {})}


def run_openapi(check: OpenApiCheck, target: Target) -> str:
    with client() as http:
        try:
            document = http.get(target.base_url + check.path).json()
        except (httpx.HTTPError, ValueError) as exc:
            raise CheckFailed(f"no OpenAPI document at {check.path}: {exc}") from exc
        routes = callable_routes(document, check.exclude)
        if not routes:
            raise CheckFailed(f"{check.path} declares no route that is safe to call")
        problems: list[dict[str, Any]] = []
        for template, concrete in routes:
            try:
                response = http.get(target.base_url + concrete)
            except httpx.HTTPError as exc:
                problems.append({"route": concrete, "error": type(exc).__name__})
                continue
            if response.status_code >= 500:
                problems.append(
                    {
                        "route": concrete,
                        "status": response.status_code,
                        "response": excerpt(target.redact(response.text)),
                    }
                )
                continue
            schema = _schema_for(document, template, response.status_code)
            if schema is None:
                continue
            try:
                errors = sorted(Draft202012Validator(schema).iter_errors(response.json()), key=str)
            except (ValueError, SchemaError) as exc:
                problems.append({"route": concrete, "error": f"not valid JSON/schema: {exc}"})
                continue
            if errors:
                where = "/".join(str(p) for p in errors[0].absolute_path) or "(root)"
                problems.append(
                    {
                        "route": concrete,
                        "status": response.status_code,
                        "schema_error": f"{where}: {errors[0].message}",
                    }
                )
    if problems:
        raise CheckFailed(
            f"{len(problems)} of {len(routes)} routes failed", {"failures": problems[:10]}
        )
    return f"{len(routes)} routes answered and matched their schemas"
