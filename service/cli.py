"""`pureai serve` and `pureai keys create|list|revoke`, added to the `pureai` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from types import FrameType
from typing import Any

from . import logs
from .settings import Settings

__all__ = ["add_commands"]


def add_commands(sub: Any) -> None:
    s = sub.add_parser("serve", help="start the gateway (uvicorn)")
    s.add_argument("--host", help="default 127.0.0.1 (PUREAI_HOST)")
    s.add_argument("--port", type=int, help="default 8000 (PUREAI_PORT)")
    s.add_argument("--workers", type=int, help="processes (PUREAI_WORKERS, default 1)")
    s.add_argument("--database-url", help="sqlite:///path.db or postgresql://... (PUREAI_DATABASE_URL)")
    s.add_argument("--catalogue", help="catalogue TOML (PUREAI_CATALOGUE, default built-in)")
    s.add_argument("--artifacts", help="router artifacts (PUREAI_ARTIFACTS, default shipped)")
    s.add_argument("--log-level", help="debug, info, warning (PUREAI_LOG_LEVEL)")
    s.set_defaults(func=cmd_serve)
    k = sub.add_parser("keys", help="create, list and revoke API keys (in the configured store)")
    ks = k.add_subparsers(dest="keys_command", required=True)
    c = ks.add_parser("create", help="create a key and print it once")
    c.add_argument("--tenant", default="default")
    c.add_argument("--name", default="")
    c.add_argument("--models", help="comma-separated models the key may use (default: all)")
    c.add_argument("--rpm", type=int, help="requests per minute")
    c.add_argument("--tpm", type=int, help="tokens per minute")
    c.add_argument("--budget-usd", type=float, help="spend cap in USD")
    c.add_argument("--admin", action="store_true", help="an admin key (may use the admin API)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_keys_create)
    ls = ks.add_parser("list", help="list keys (never their secrets)")
    ls.add_argument("--tenant")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_keys_list)
    r = ks.add_parser("revoke", help="revoke a key by id")
    r.add_argument("key_id")
    r.set_defaults(func=cmd_keys_revoke)
    x = sub.add_parser("export", help="the ledger's scored requests as training data (pureai train --data)")
    x.add_argument("--since", help="unix seconds or ISO 8601 (UTC unless zoned); default: the start")
    x.add_argument("--until", help="exclusive; default: now")
    x.add_argument("--out", required=True, help="folder to write traffic.jsonl into")
    x.set_defaults(func=cmd_export)
    for p in (c, ls, r, x):
        p.add_argument("--database-url", help="the store (PUREAI_DATABASE_URL; default .pureai/pureai.db)")


def _settings(args: argparse.Namespace) -> Settings:
    """Flags become PUREAI_* variables, so uvicorn's worker processes read the same settings."""
    for flag in ("host", "port", "workers", "database_url", "catalogue", "artifacts", "log_level"):
        value = getattr(args, flag, None)
        if value is not None:
            os.environ["PUREAI_" + flag.upper()] = str(value)
    return Settings()


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import Config, Grace, Limits, serve

    settings = _settings(args)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    signal.signal(signal.SIGTERM, _exit_cleanly)
    if settings.workers > 1 and settings.redis_url is None:
        print(
            f"pureai: warning: {settings.workers} workers without PUREAI_REDIS_URL: each worker keeps "
            f"its own rate-limit windows, so a key may get up to {settings.workers}x its rpm/tpm; "
            "set PUREAI_REDIS_URL to share them",
            file=sys.stderr,
            flush=True,
        )
    busy = _cannot_listen(settings.host, settings.port)
    if busy is not None:  # before the store is touched: a start that cannot serve spends no admin key
        print(f"pureai: error: cannot listen on {settings.host}:{settings.port}: {busy}", file=sys.stderr)
        return 1
    short = _raise_fd_limit(settings.max_connections + settings.max_concurrency + FDS_BESIDE)
    if short is not None:
        print(f"pureai: warning: {short}", file=sys.stderr, flush=True)
    created = asyncio.run(_bootstrap(settings))
    logs.install(settings)  # uvicorn's own lines too (log_config=None: it configures no handler)
    metrics_dir = _metrics_dir(settings.workers)
    try:
        serve(
            Config(
                "service.asgi:factory",
                limits=Limits.of(settings),
                factory=True,
                host=settings.host,
                port=settings.port,
                workers=settings.workers,
                loop="uvloop" if sys.platform != "win32" else "asyncio",
                log_level=settings.log_level,
                log_config=None,
                # uvicorn annotates it as int, but only hands it to asyncio.timeout: a float works
                timeout_graceful_shutdown=Grace(settings.graceful_timeout_s).wait_s,  # type: ignore[arg-type]
                access_log=False,  # the gateway writes one access line per request (service/logs.py)
            )
        )
    except SystemExit as exc:  # uvicorn's exit when the server did not start (bind, lifespan)
        if created is not None and exc.code not in (0, None):
            asyncio.run(_withdraw(settings, created))
        raise
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if settings.workers > 1:  # the supervisor, its workers gone: its teardown took 0.4-0.6 s
        _exit_cleanly(signal.SIGTERM, None)
    return 0


def _cannot_listen(host: str, port: int) -> str | None:
    """Why the server could not bind `host:port` (the port taken, the address not this host's), or
    None when it can: bound as uvicorn will bind it, then released at once for it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


FDS_BESIDE = 256
"""File descriptors a worker needs beside its client connections and one upstream connection per
request in flight: the store, logs, the limiter, litellm's pools, the router's files."""


def _raise_fd_limit(needed: int) -> str | None:
    """Raise the soft limit of open files to `needed` (at most the hard limit), as Go's runtime does
    at start: a service manager's soft default of 1,024 would make accept() fail long before
    PUREAI_MAX_CONNECTIONS is reached. Returns a warning when the hard limit is below `needed`."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return None
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        return (
            f"the open-file limit is {target}, below the {needed} that PUREAI_MAX_CONNECTIONS and "
            "PUREAI_MAX_CONCURRENCY need; raise it (ulimit -n, LimitNOFILE=) or lower them"
        )
    return None


def _metrics_dir(workers: int) -> str | None:
    """With several workers, a fresh temporary directory for prometheus-client's multiprocess mode
    (the workers inherit PROMETHEUS_MULTIPROC_DIR), removed when the server stops; None with one
    worker (its registry is in the process) or when the variable is already set (the caller's)."""
    from .metrics import ENV

    if workers < 2 or os.environ.get(ENV):
        return None
    path = tempfile.mkdtemp(prefix="pureai-metrics-")
    os.environ[ENV] = path
    return path


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    """SIGTERM outside uvicorn's own handling: before uvicorn starts, or raised again by uvicorn once
    its graceful shutdown is over (the store is closed, every ledger row written). End at once, as
    SIGTERM's default action would, but with status 0: a stop asked for is a success. `os._exit`
    skips the interpreter's teardown, seconds of garbage collection over litellm's and the router's
    objects, which would only delay the exit past the graceful deadline."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


async def _bootstrap(settings: Settings) -> str | None:
    """Before the workers start: check the catalogue, migrate the store; an empty store gets an
    admin key, printed once. Returns the id of the key it created (None: it created none)."""
    from models_registry import load_catalogue

    from .keys import make_key
    from .store import KeyRecord, open_store

    load_catalogue(settings.catalogue)  # a bad file stops here, with its name, entry and field
    store = open_store(settings.store_url())
    await store.open()
    try:
        if settings.admin_key is None and await store.count_admin_keys() == 0:
            record, secret = make_key(KeyRecord(id="", tenant="admin", name="first admin key", admin=True))
            await store.add_key(record)
            print(
                "\npureai: this store had no admin key; created one (shown once, keep it):\n\n"
                f"    {secret}\n\nCreate tenant keys with it: POST /v1/admin/keys, or `pureai keys create`.\n",
                file=sys.stderr,
                flush=True,
            )
            return record.id
        return None
    finally:
        await store.close()


async def _withdraw(settings: Settings, key_id: str) -> None:
    """Revoke the admin key this start created and printed, since the server did not start: the
    next start on this store creates and prints another, instead of none."""
    from .store import open_store

    store = open_store(settings.store_url())
    try:
        await store.open()
        await store.revoke_key(key_id, time.time())
    except Exception as exc:  # the server's own error matters more; say what is left to do
        print(
            f"pureai: warning: could not revoke the admin key {key_id} printed above: {exc}", file=sys.stderr
        )
        return
    finally:
        with contextlib.suppress(Exception):
            await store.close()
    print(
        f"pureai: the gateway did not start, so the admin key printed above ({key_id}) is revoked; "
        "the next start prints a new one",
        file=sys.stderr,
        flush=True,
    )


def cmd_keys_create(args: argparse.Namespace) -> int:
    from models_registry import load_catalogue

    from .keys import new_key

    settings = _settings(args)
    models = None
    if args.models:
        catalogue = load_catalogue(settings.catalogue)
        names = [m.strip() for m in args.models.split(",") if m.strip()]
        for name in names:
            catalogue.get(name)  # UnknownModelError names it
        models = tuple(dict.fromkeys(names))
    for flag in ("rpm", "tpm"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise SystemExit(f"pureai: error: --{flag} must be >= 1, got {value}")
    record, secret = new_key(
        settings, tenant=args.tenant, name=args.name, admin=args.admin, models=models,
        rpm=args.rpm, tpm=args.tpm, budget_usd=args.budget_usd,
    )  # fmt: skip
    asyncio.run(_with_store(settings, lambda store: store.add_key(record)))
    if args.json:
        print(json.dumps({"id": record.id, "tenant": record.tenant, "key": secret}))
    else:
        print(f"created key {record.id} for tenant {record.tenant!r} (shown once):\n{secret}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from .routes.admin import key_json

    settings = _settings(args)
    records = asyncio.run(_with_store(settings, lambda store: store.list_keys(args.tenant)))
    if args.json:
        print(json.dumps([key_json(r) for r in records]))
        return 0
    print(f"{'id':14} {'tenant':16} {'name':20} {'admin':5} {'rpm':>6} {'tpm':>8}  status")
    for r in records:
        status = "revoked" if r.revoked else "live"
        print(
            f"{r.id:14} {r.tenant:16} {r.name:20} {'yes' if r.admin else 'no':5} "
            f"{r.rpm or '-':>6} {r.tpm or '-':>8}  {status}"
        )
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    settings = _settings(args)
    ok = asyncio.run(_with_store(settings, lambda store: store.revoke_key(args.key_id, time.time())))
    if not ok:
        print(f"pureai: error: no live key {args.key_id!r}", file=sys.stderr)
        return 2
    print(f"revoked {args.key_id}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .export import FILE, export, parse_time

    settings = _settings(args)
    try:
        since, until = parse_time(args.since), parse_time(args.until)
    except ValueError as exc:
        raise SystemExit(f"pureai: error: {exc}") from None
    out = Path(args.out)
    days = settings.prompt_retention_days
    count = asyncio.run(_with_store(settings, lambda store: export(store, out, since, until, days)))
    print(json.dumps({"out": str(out / FILE), "rows": count}))
    if count == 0 and not settings.log_prompts:
        print("pureai: note: no rows; prompts are kept only with PUREAI_LOG_PROMPTS=true", file=sys.stderr)
    return 0


async def _with_store(settings: Settings, action: Any) -> Any:
    from .store import open_store

    store = open_store(settings.store_url())
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()
