"""Fuzz the API from its own OpenAPI spec with schemathesis (authenticated as the owner): no answer may be a 5xx."""

from __future__ import annotations

import asyncio
import shutil
import sys
from pathlib import Path

import httpx
import pytest

from companion.car import bearer, pair_phone, sign_in, start_car

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (pip install -e '.[dev]')")
async def test_fuzzing_the_openapi_spec_finds_no_server_error(tmp_path: Path) -> None:
    car = await start_car(tmp_path, rate_per_s=1000.0, rate_burst=1000, command_wait_s=0.2)
    try:
        async with httpx.AsyncClient(base_url=car.url) as http:
            owner = bearer((await sign_in(http))["access_token"])
            await pair_phone(car, http, owner)  # so key routes have something to find
            spec = (await http.get("/openapi.json")).json()
        assert len(spec["paths"]) > 25 and "/api/v1/vehicle/commands/unlock" in spec["paths"]
        assert spec["components"]["schemas"]["ErrorBody"]["required"] == ["error", "detail"]
        assert SCHEMATHESIS is not None
        proc = await asyncio.create_subprocess_exec(
            SCHEMATHESIS, "run", f"{car.url}/openapi.json", "--header", f"Authorization:{owner['Authorization']}",
            "--checks", "not_a_server_error", "--max-examples", "10", "--phases", "examples,coverage,fuzzing",
            "--seed", "5", "--workers", "1", "--request-timeout", "10",
            "--exclude-path", "/api/v1/oauth/revoke",  # would revoke the very token the fuzzer uses
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path)
        output, _ = await asyncio.wait_for(proc.communicate(), 120)
        report = output.decode(errors="replace")
        assert proc.returncode == 0, report[-6000:]
        assert "not_a_server_error" in report or "passed" in report.lower()
    finally:
        await car.shutdown()
