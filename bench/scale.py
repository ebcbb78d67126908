"""Bench 4 — the record at scale: with 1,000,000 proposals and 5,000,000 audit events in PostgreSQL, the
reviewer inbox, the admin change lists (proposals, receipts, audit events) and the API list endpoint:
p95 latency and queries per page.

Rows are generated in SQL (``INSERT … SELECT generate_series``): 80 % of them in the measured tenant
(the worst case for its reviewer), the rest over four others; statuses 75 % committed (each with a
decision and a receipt), 5 % pending, the rest rejected/failed/expired/cancelled; five audit events per
proposal with plausible (not verifying) hash-chain fields. The secondary indexes are dropped during the
load and rebuilt after (as a restore would), then VACUUM ANALYZE, as autovacuum would have by then.

Pages are requested in-process (Django's test Client, so no network or gunicorn in the figures) first on a
small record, then on the full one: "constant query count" means no more queries on the full record than
on the small one; the API list is also fetched 10 at a time, to show a count that follows the page size.

  BENCH_SCALE           fraction of the full record (default 1.0 = 1M proposals, 5M events)
  BENCH_SCALE_REQUESTS  timed requests per page (default 20, after 2 warm-ups; fewer, but at least 5, once a
                        page has taken BENCH_SCALE_PAGE_SECONDS, default 6)
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Any, cast

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Run, summary_ms, table, write_results

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
REQUESTS = int(os.environ.get("BENCH_SCALE_REQUESTS", "20"))
PAGE_SECONDS = float(os.environ.get("BENCH_SCALE_PAGE_SECONDS", "6"))
FULL_PROPOSALS = int(1_000_000 * SCALE)
FULL_EVENTS = int(5_000_000 * SCALE)
SMALL_PROPOSALS = 2_000
SMALL_EVENTS = 10_000
TARGET_P95_MS = 300.0
TABLES = ["approvals_proposal", "approvals_decision", "approvals_receipt", "audit_auditevent"]

# $1 first proposal number, $2 last, $3 tenant ids, $4 agent ids, $5 total planned (for created_at spacing)
PROPOSALS_SQL = """
INSERT INTO approvals_proposal (id, tenant_id, agent_id, on_behalf_of_id, tool, args, args_hash, rationale, risk,
    preview, status, status_reason, idempotency_key, expires_at, commit_attempts, lease_until, next_attempt_at,
    discarded_at, created_at, updated_at)
SELECT md5('p' || g)::uuid, (%(tenants)s::bigint[])[t], (%(agents)s::bigint[])[t], NULL,
    (ARRAY['crm.create_ticket', 'crm.update_ticket', 'slack.post_message'])[1 + g %% 3],
    jsonb_build_object('subject', 'VPN down for office ' || g, 'description', 'Nobody can connect since 9:00.',
                       'priority', 'high', 'customer_email', 'user' || (g %% 5000) || '@example.com',
                       'tags', jsonb_build_array('network')),
    md5('a' || g) || md5('b' || g), 'user reported an outage', (ARRAY['low', 'medium', 'high'])[1 + g %% 3],
    jsonb_build_object('summary', 'Create ticket "VPN down for office ' || g || '"', 'changes', '[]'::jsonb),
    s, CASE WHEN s = 'failed' THEN 'CRM answered 422' ELSE '' END,
    'derived-' || md5('k' || g) || md5('l' || g), c + interval '1 day', (s IN ('committed', 'failed'))::int,
    NULL, NULL, NULL, c, c + interval '3 seconds'
FROM (
    SELECT g,
        CASE WHEN g %% 10 < 8 THEN 1 ELSE 2 + g %% 4 END AS t,
        CASE g %% 20 WHEN 0 THEN 'pending' WHEN 1 THEN 'rejected' WHEN 2 THEN 'failed' WHEN 3 THEN 'expired'
            WHEN 4 THEN 'cancelled' ELSE 'committed' END AS s,
        now() - (%(total)s - g) * interval '2 seconds' AS c
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
) AS src
"""
DECISIONS_SQL = """
INSERT INTO approvals_decision (proposal_id, reviewer_id, verdict, reason, args_hash, edited_from, channel, ip,
    user_agent, at)
SELECT p.id, %(reviewer)s, CASE WHEN p.status = 'rejected' THEN 'rejected' ELSE 'approved' END,
    CASE WHEN p.status = 'rejected' THEN 'not this customer' ELSE '' END, p.args_hash, NULL, 'web',
    '10.0.0.1', 'Mozilla/5.0', p.created_at + interval '1 second'
FROM approvals_proposal p
WHERE p.status IN ('committed', 'failed', 'rejected') AND p.created_at >= %(since)s
"""
RECEIPTS_SQL = """
INSERT INTO approvals_receipt (proposal_id, system, external_id, external_url, response_summary, attempts,
    args_hash, committed_at)
SELECT p.id, CASE WHEN p.tool LIKE 'slack.%%' THEN 'slack' ELSE 'crm' END, (1000000 + row_number() OVER ())::text,
    '', '{"status": 201}'::jsonb, 1, p.args_hash, p.updated_at
FROM approvals_proposal p
WHERE p.status = 'committed' AND p.created_at >= %(since)s
"""
# Five events per proposal: e = 5 * (g - 1) + k, k = 0..4.
EVENTS_SQL = """
INSERT INTO audit_auditevent (tenant, actor_type, actor_id, actor_label, action, subject_type, subject_id, at,
    channel, ip, user_agent, result, data, decision_id, args_hash, prev_hash, hash)
SELECT (%(slugs)s::text[])[CASE WHEN g %% 10 < 8 THEN 1 ELSE 2 + g %% 4 END],
    (ARRAY['agent', 'user', 'system', 'system', 'system'])[k + 1],
    CASE WHEN k = 0 THEN '1' WHEN k = 1 THEN '2' ELSE '' END,
    (ARRAY['bench-bot', 'reviewer', 'acme', 'acme', 'acme'])[k + 1],
    (ARRAY['proposal.submitted', 'proposal.approved', 'proposal.commit_started', 'outbound.call',
           'proposal.committed'])[k + 1],
    'proposal', p::uuid::text,
    now() - (%(total)s - g) * interval '2 seconds' + k * interval '500 milliseconds',
    (ARRAY['api', 'web', 'worker', 'worker', 'worker'])[k + 1],
    CASE WHEN k < 2 THEN '10.0.0.1'::inet END, CASE WHEN k < 2 THEN 'bench' ELSE '' END, 'ok',
    (ARRAY['{"tool": "crm.create_ticket", "status": "committed"}', '{"tool": "crm.update_ticket", "status": "committed"}',
           '{"tool": "slack.post_message", "status": "committed"}'])[1 + g %% 3]::jsonb,
    CASE WHEN k > 0 THEN g::text ELSE '' END, p || p, ph || ph, h || h
FROM (
    -- One md5 per row for its hash, one for the previous row's, one for the proposal (subject, args hash).
    SELECT e, g, k, md5(e::text) AS h, md5((e - 1)::text) AS ph, md5('p' || g) AS p
    FROM (SELECT e, 1 + (e - 1) / 5 AS g, (e - 1) %% 5 AS k
          FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS e) AS numbered
) AS src
"""


def secondary_indexes(conn: Any) -> list[tuple[str, str]]:
    """(name, CREATE statement) of every index on TABLES that backs no constraint."""
    return conn.execute(
        """
        SELECT i.indexname, i.indexdef FROM pg_indexes i
        JOIN pg_class c ON c.relname = i.indexname
        WHERE i.schemaname = 'public' AND i.tablename = ANY(%s)
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = c.oid)
    """,
        [TABLES],
    ).fetchall()


def generate(
    conn: Any,
    ids: dict[str, Any],
    *,
    p_from: int,
    p_to: int,
    e_from: int,
    e_to: int,
    total: int,
    rebuild: bool,
) -> dict[str, float]:
    timings: dict[str, float] = {}
    conn.execute("SET synchronous_commit = off")
    conn.execute("SET maintenance_work_mem = '512MB'")
    # The rows are consistent by construction: skip the row-by-row foreign-key triggers (superuser only).
    conn.execute("SET session_replication_role = replica")
    indexes = secondary_indexes(conn) if rebuild else []
    t = time.monotonic()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    since = conn.execute(
        "SELECT now() - (%s - %s::bigint) * interval '2 seconds' - interval '1 second'", [total, p_from]
    ).fetchone()[0]
    steps = [
        (
            "proposals",
            PROPOSALS_SQL,
            {
                "first": p_from,
                "last": p_to,
                "total": total,
                "tenants": ids["tenants"],
                "agents": ids["agents"],
            },
        ),
        ("decisions", DECISIONS_SQL, {"reviewer": ids["reviewer"], "since": since}),
        ("receipts", RECEIPTS_SQL, {"since": since}),
        ("audit_events", EVENTS_SQL, {"first": e_from, "last": e_to, "total": total, "slugs": ids["slugs"]}),
    ]
    for name, sql, params in steps:
        t = time.monotonic()
        conn.execute(sql, params)
        timings[name] = round(time.monotonic() - t, 1)
        print(f"  {name}: {timings[name]} s", flush=True)
    t = time.monotonic()
    for _, definition in indexes:
        conn.execute(definition)
    timings["indexes"] = round(time.monotonic() - t, 1)
    conn.execute("SET session_replication_role = DEFAULT")
    t = time.monotonic()
    for name in TABLES:
        conn.execute(f"VACUUM ANALYZE {name}")
    timings["vacuum_analyze"] = round(time.monotonic() - t, 1)
    print(f"  indexes: {timings['indexes']} s, vacuum analyze: {timings['vacuum_analyze']} s", flush=True)
    return timings


def pages(tokens: dict[str, str]) -> list[tuple[str, str, str]]:
    """(label, who, path): who is 'reviewer' (session), 'admin' (session), or an API token name."""
    return [
        ("inbox /", "reviewer", "/"),
        ("inbox /?status=committed", "reviewer", "/?status=committed"),
        ("inbox /?tool=crm.update_ticket", "reviewer", "/?tool=crm.update_ticket"),
        ("inbox page 2", "reviewer", "NEXT:/"),
        ("admin proposals", "admin", "/admin/approvals/proposal/"),
        ("admin proposals ?status=pending", "admin", "/admin/approvals/proposal/?status__exact=pending"),
        ("admin receipts", "admin", "/admin/approvals/receipt/"),
        ("admin audit events", "admin", "/admin/audit/auditevent/"),
        ("admin decisions", "admin", "/admin/approvals/decision/"),
        ("API /proposals/ (reviewer)", "api-reviewer", "/api/v1/proposals/"),
        ("API /proposals/?status=pending", "api-reviewer", "/api/v1/proposals/?status=pending"),
        ("API /proposals/ (agent)", "api-agent", "/api/v1/proposals/"),
        ("API /proposals/ page 2", "api-reviewer", "NEXT:/api/v1/proposals/"),
        # The same list 10 at a time: a query count that follows the page size is an N+1.
        ("API /proposals/?page_size=10", "api-reviewer", "/api/v1/proposals/?page_size=10"),
    ]


def measure(clients: dict[str, Any], requests: int) -> dict[str, dict[str, Any]]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    figures: dict[str, dict[str, Any]] = {}
    for label, who, path in pages({}):
        client = clients[who]
        if path.startswith("NEXT:"):  # the page the first page links to as next
            first = client.get(path[5:])
            path = next_link(first)
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"{label}: {path} answered {response.status_code}: {response.content[:300]!r}")
        with CaptureQueriesContext(connection) as ctx:
            client.get(path)
        captured = list(ctx.captured_queries)  # the next request_started resets the connection's log
        times: list[float] = []
        deadline = time.monotonic() + PAGE_SECONDS
        # At least 5 requests; past PAGE_SECONDS a page is far over the target anyway.
        while len(times) < requests and (len(times) < 5 or time.monotonic() < deadline):
            t0 = time.perf_counter()
            response = client.get(path)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200
        slowest = sorted(captured, key=lambda q: -float(q["time"]))[:3]
        figures[label] = {
            "path": path,
            "queries": len(captured),
            **summary_ms(times),
            "slowest_sql": [
                {"ms": round(float(q["time"]) * 1000, 1), "sql": q["sql"][:300]} for q in slowest
            ],
        }
    return figures


def next_link(response: Any) -> str:
    if response["Content-Type"].startswith("application/json"):
        url = response.json()["next"]
        return url[url.index("/api/") :]
    match = re.search(rb'href="(\?[^"]*after=[^"]*)"', response.content)
    if not match:
        raise RuntimeError("no next-page link on the inbox")
    return "/" + match.group(1).decode().replace("&amp;", "&")


def main() -> dict[str, Any]:
    import psycopg

    with Run("scale") as run:
        started = time.monotonic()
        run.migrate()
        party = run.party()
        os.environ.update(run.env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "acme_integration.settings"
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.db import connections
        from django.test import Client

        from approvals.models import AgentCredential, Tenant

        try:
            user_model = get_user_model()
            admin = user_model.objects.create_superuser("bench-admin", "admin@example.com", "bench-pass-123")
            reviewer = user_model.objects.get(username=party["reviewer_username"])
            for i in range(4):
                tenant = Tenant.objects.create(slug=f"other{i}", name=f"Other {i}")
                AgentCredential.objects.create(
                    tenant=tenant,
                    name="bot",
                    allowed_tools=["*"],
                    token_hash=f"{i:064d}",
                    token_prefix="x",  # noqa: S106
                )
            tenants = list(Tenant.objects.order_by("id"))
            acme = next(t for t in tenants if t.slug == party["tenant"])
            others = [t for t in tenants if t.slug != party["tenant"]]
            ordered = [acme, *others]
            ids = {
                "tenants": [t.pk for t in ordered],
                "slugs": [t.slug for t in ordered],
                # Every tenant has an agent (the party's, or the one made above): first() finds it.
                "agents": [
                    cast(AgentCredential, AgentCredential.objects.filter(tenant=t).order_by("pk").first()).pk
                    for t in ordered
                ],
                "reviewer": reviewer.pk,
            }
            clients = {
                "reviewer": Client(),
                "admin": Client(),
                "api-reviewer": Client(HTTP_AUTHORIZATION=f"Bearer {party['reviewer']}"),
                "api-agent": Client(HTTP_AUTHORIZATION=f"Bearer {party['agent']}"),
            }
            clients["reviewer"].force_login(reviewer)
            clients["admin"].force_login(admin)
            results: dict[str, Any] = {}
            generation: dict[str, Any] = {}
            with psycopg.connect(run.database_url, autocommit=True) as conn:
                print(
                    f"generating the small record ({SMALL_PROPOSALS} proposals, {SMALL_EVENTS} events)",
                    flush=True,
                )
                generation["small"] = generate(
                    conn,
                    ids,
                    p_from=1,
                    p_to=SMALL_PROPOSALS,
                    e_from=1,
                    e_to=SMALL_EVENTS,
                    total=FULL_PROPOSALS,
                    rebuild=False,
                )
                results["small"] = measure(clients, max(REQUESTS // 2, 5))
                print(
                    f"generating the full record ({FULL_PROPOSALS:,} proposals, {FULL_EVENTS:,} events)",
                    flush=True,
                )
                t = time.monotonic()
                generation["full"] = generate(
                    conn,
                    ids,
                    p_from=SMALL_PROPOSALS + 1,
                    p_to=FULL_PROPOSALS,
                    e_from=SMALL_EVENTS + 1,
                    e_to=FULL_EVENTS,
                    total=FULL_PROPOSALS,
                    rebuild=True,
                )
                generation["full_total_s"] = round(time.monotonic() - t, 1)
                # Aggregates: always one row.
                counts = {
                    name: cast("tuple[Any, ...]", conn.execute(f"SELECT count(*) FROM {name}").fetchone())[0]  # noqa: S608
                    for name in TABLES
                }
                db_size = cast(
                    "tuple[Any, ...]",
                    conn.execute("SELECT pg_size_pretty(pg_database_size(current_database()))").fetchone(),
                )[0]
                connections.close_all()
                results["full"] = measure(clients, REQUESTS)
        finally:
            connections.close_all()
        elapsed = time.monotonic() - started

    rows = []
    met = True
    for label, full in results["full"].items():
        small = results["small"][label]
        # Constant: no more queries on the full record than on the small one (the small one may take one
        # more, e.g. the inbox's second phase when its few pending rows do not fill a page).
        constant = full["queries"] <= small["queries"]
        ok = full["p95_ms"] < TARGET_P95_MS and constant
        met = met and ok
        rows.append(
            [label, small["p95_ms"], full["p50_ms"], full["p95_ms"], small["queries"], full["queries"], ok]
        )
    table(
        f"Pages on {counts['approvals_proposal']:,} proposals / {counts['audit_auditevent']:,} audit events "
        f"({REQUESTS} requests each, in-process)",
        ["page", "small p95 ms", "p50 ms", "p95 ms", "queries small", "queries full", "met"],
        rows,
    )
    result = {
        "scale": SCALE,
        "counts": counts,
        "database_size": db_size,
        "generation_s": generation,
        "pages": results,
        "target_p95_ms": TARGET_P95_MS,
        "met": met,
        "requests_per_page": REQUESTS,
        "elapsed_s": round(elapsed, 1),
    }
    print(
        f"record generated in {generation['full_total_s']} s (database {db_size}); bench took {elapsed:.0f} s"
    )
    write_results("scale", result)
    return result


if __name__ == "__main__":
    main()
