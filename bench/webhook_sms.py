"""Twilio SMS webhook throughput: palaute under gunicorn vs a bare Flask endpoint, same run.

Both servers run, at the same time, as ``gunicorn -w 2`` (sync workers, as
gunicorn.conf.py deploys; ``--threads N`` for gthread) on loopback and get the same
load: N distinct phone numbers each go through the whole library-visit survey from
flows/ by SMS, exactly as Twilio delivers it - a form-encoded POST signed with
``X-Twilio-Signature`` (``RequestValidator``) over the public URL: KIRJASTO, a rating,
a comment, a choice, a comment: five messages per number, in order per number, from
several client threads at once. About 5 % of the messages are posted twice (Twilio
retries after a timeout): each must get the same TwiML and be recorded once.

The baseline endpoint does the least a Twilio webhook can: read the form and answer a
fixed TwiML reply. palaute also checks the signature, parses the message, locks the
contact, dedupes on MessageSid, stores the inbound message, runs the survey engine and
stores the run, the answer and the reply, and renders TwiML. Every palaute reply is
checked against the survey's next prompt. The ratio (palaute requests/s / baseline
requests/s) is the figure, the median over ``--rounds`` rounds that alternate between the
two servers (so load from elsewhere on the machine hits both alike); target >= 0.35.

After the run the database is checked: one inbound row per distinct MessageSid, four
answers per number and no (contact, step) answered twice, every run completed.

    .venv/bin/python -m bench.webhook_sms [--numbers 150] [--clients 8] [--rounds 3]
        [--backends sqlite,postgres] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import http.client
import random
import secrets
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import sqlalchemy as sa
from flask import Flask, Response
from twilio.request_validator import RequestValidator

from bench.harness import (
    DUPLICATE_SHARE,
    CpuMeter,
    Message,
    Result,
    database,
    drive,
    gunicorn,
    merge,
)
from bot.catalogue import Catalogue
from storage.db import make_engine

ROOT = Path(__file__).resolve().parent.parent

AUTH_TOKEN = "b3c5d1e9f0a2b4c6d8e0f1a3b5c7d9e1"
ACCOUNT_SID = "AC" + "5" * 32
PUBLIC = "https://kysely.example.fi"
PATH = "/webhooks/twilio/sms"
SURVEY_NUMBER = "+358451230000"
FORM = "application/x-www-form-urlencoded"
TARGET = 0.35
FIXED_TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Kiitos!</Message></Response>'
)
# What a citizen types, in order (library-visit, Finnish): keyword, rating 4, a comment,
# reason 1, a last comment.
SCRIPT = (
    "KIRJASTO",
    "4",
    "Hyvät kokoelmat ja ystävällinen henkilökunta.",
    "1",
    "Kiitos, aukioloajat voisivat olla pidemmät.",
)
ANSWERS_PER_NUMBER = 4


# --- the baseline app (gunicorn loads it as bench.webhook_sms:bare_app()) --------------------


def bare_app() -> Flask:
    from flask import request

    app = Flask("bare_twilio")

    @app.post(PATH)
    def webhook() -> Response:
        request.form.get("Body")  # read the form like any handler must
        return Response(FIXED_TWIML, mimetype="text/xml")

    return app


# --- the load --------------------------------------------------------------------------------


def expected_replies() -> list[str]:
    flow = Catalogue.load(ROOT / "flows").get("library-visit")
    assert flow is not None, "flows/library-visit.yaml is missing"
    steps = ["overall", "what_liked", "visit_reason", "comment"]
    return [flow.text(flow.step(s).text, "fi") for s in steps] + [flow.closing["fi"]]


def conversation(number: str) -> list[Message]:
    """The signed form posts one number sends: (body, headers with X-Twilio-Signature)."""
    validator = RequestValidator(AUTH_TOKEN)
    out = []
    for text in SCRIPT:
        sid = "SM" + secrets.token_hex(16)
        form = {
            "ToCountry": "FI", "ToState": "", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "",
            "SmsStatus": "received", "FromCity": "", "Body": text, "FromCountry": "FI",
            "To": SURVEY_NUMBER, "ToZip": "", "NumSegments": "1", "MessageSid": sid,
            "AccountSid": ACCOUNT_SID, "From": number, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        signature = validator.compute_signature(PUBLIC + PATH, form)
        headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        out.append((urlencode(form).encode(), headers))
    return out


def _texts(payload: bytes) -> list[str] | None:
    try:
        root = ElementTree.fromstring(payload)
    except ElementTree.ParseError:
        return None
    if root.tag != "Response":
        return None
    return [m.text or "" for m in root.findall("Message")]


def run_load(
    name: str,
    port: int,
    numbers: list[list[Message]],
    clients: int,
    expected: list[str] | None,
    meter: CpuMeter | None = None,
) -> Result:
    """Drive the numbers' conversations; with ``expected``, every reply must be the
    survey's next prompt (else just TwiML)."""

    def judge(index: int, status: int, payload: bytes) -> str | None:
        texts = _texts(payload) if status == 200 else None
        if texts is None or (expected is not None and texts != [expected[index]]):
            return f"{status} {payload[:200]!r}"
        return None

    def idempotency_token() -> dict[str, str]:  # Twilio sends a new one on every attempt
        return {"I-Twilio-Idempotency-Token": secrets.token_hex(8)}

    return drive(
        name, port, PATH, numbers, clients, judge, per_attempt=idempotency_token, meter=meter
    )


def check_database(url: str, numbers: int) -> list[str]:
    """Every number (measured and warm-up) answered the whole survey exactly once."""
    engine = make_engine(url)
    problems = []
    try:
        with engine.connect() as conn:
            one = conn.execute(sa.text(
                "SELECT count(*) AS inbound, count(DISTINCT provider_id) AS sids FROM messages "
                "WHERE channel = 'sms' AND direction = 'in'"
            )).one()  # fmt: skip
            answers = conn.execute(sa.text("SELECT count(*) FROM answers")).scalar_one()
            doubled = conn.execute(sa.text(
                "SELECT count(*) FROM (SELECT contact_id, step_id FROM answers "
                "GROUP BY contact_id, step_id HAVING count(*) > 1) AS d"
            )).scalar_one()  # fmt: skip
            completed = conn.execute(
                sa.text("SELECT count(*) FROM flow_runs WHERE status = 'completed'")
            ).scalar_one()
    finally:
        engine.dispose()
    if one.inbound != numbers * len(SCRIPT) or one.sids != one.inbound:
        problems.append(
            f"{one.inbound} inbound rows ({one.sids} distinct sids) for "
            f"{numbers * len(SCRIPT)} distinct messages"
        )
    if answers != ANSWERS_PER_NUMBER * numbers:
        problems.append(f"{answers} answers, expected {ANSWERS_PER_NUMBER * numbers}")
    if doubled:
        problems.append(f"{doubled} (contact, step) pairs answered twice")
    if completed != numbers:
        problems.append(f"{completed} completed runs, expected {numbers}")
    return problems


# --- two messages from one number at the same instant ------------------------------------------

PAIR = ("4", "Hyvää palvelua")  # a rating and a comment for the quick-poll, sent together


def _form(number: str, text: str) -> tuple[bytes, str]:
    sid = "SM" + secrets.token_hex(16)
    form = {"MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "AccountSid": ACCOUNT_SID,
            "From": number, "To": SURVEY_NUMBER, "Body": text, "NumMedia": "0",
            "ApiVersion": "2010-04-01"}  # fmt: skip
    signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC + PATH, form)
    return urlencode(form).encode(), signature


def _post(port: int, message: tuple[bytes, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": FORM, "X-Twilio-Signature": message[1]}
        conn.request("POST", PATH, message[0], headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def simultaneous_pairs(port: int, count: int) -> int:
    """``count`` numbers start the quick-poll, then each sends PAIR at the same instant
    (two connections released by a barrier, so both gunicorn workers get one). Returns
    how many requests failed."""
    base = random.randrange(10**7)
    numbers = [f"+35845{base + i:08d}" for i in range(count)]
    failures = sum(_post(port, _form(n, "HYMIÖ")) != 200 for n in numbers)
    for number in numbers:
        barrier = threading.Barrier(len(PAIR))
        statuses: list[int] = []
        messages = [_form(number, text) for text in PAIR]

        def send(
            message: tuple[bytes, str],
            barrier: threading.Barrier = barrier,
            statuses: list[int] = statuses,
        ) -> None:
            barrier.wait()
            statuses.append(_post(port, message))

        threads = [threading.Thread(target=send, args=(m,)) for m in messages]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures += sum(status != 200 for status in statuses)
    return failures


def check_pairs(url: str, count: int) -> tuple[list[str], int]:
    """Each pair was handled one message after the other, in the order stored: the first
    answered the rating (or, if it was the comment, was re-prompted), nothing was lost.
    Also returns how many pairs were stored comment first."""
    engine = make_engine(url)
    problems: list[str] = []
    comment_first = 0
    try:
        with engine.connect() as conn:
            runs = conn.execute(sa.text(
                "SELECT id, contact_id, status FROM flow_runs WHERE flow_id = 'quick-poll'"
            )).all()  # fmt: skip
            for run in runs:
                texts = [r.text for r in conn.execute(sa.text(
                    "SELECT text FROM messages WHERE contact_id = :c AND direction = 'in' "
                    "ORDER BY id"), {"c": run.contact_id})][1:]  # fmt: skip
                answers = dict(conn.execute(sa.text(
                    "SELECT step_id, raw_text FROM answers WHERE run_id = :r"), {"r": run.id}
                ).all())  # fmt: skip
                if sorted(texts) != sorted(PAIR):
                    problems.append(f"run {run.id}: inbound {texts}")
                elif texts[0] == PAIR[0]:
                    if answers != {"mood": PAIR[0], "comment": PAIR[1]}:
                        problems.append(f"run {run.id}: {texts} stored as {answers}")
                elif answers != {"mood": PAIR[0]}:
                    problems.append(f"run {run.id}: {texts} stored as {answers}")
                else:
                    comment_first += 1
    finally:
        engine.dispose()
    if len(runs) != count:
        problems.append(f"{len(runs)} quick-poll runs for {count} numbers")
    return problems, comment_first


def bench(backend: str, args: argparse.Namespace) -> bool:
    base = 40_000_000 + random.randrange(10**6) * 10
    numbers = [conversation(f"+35840{base + i:08d}") for i in range(args.numbers)]
    warm = [conversation(f"+35850{base + i:08d}") for i in range(8)]

    def warm_up(port: int) -> None:
        # Warm both workers through the whole path (imports, flows, language detectors
        # built in the background) with numbers outside the measured set.
        run_load("warm-up", port, warm, 4, None)
        time.sleep(3)

    expected = expected_replies()
    rounds = max(1, args.rounds)
    slices = [numbers[i::rounds] for i in range(rounds)]
    with database(backend, args.pg_url) as url:
        env = {
            "DATABASE_URL": url,
            "FLOWS_DIR": str(ROOT / "flows"),
            "PUBLIC_BASE_URL": PUBLIC,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SKIP_SIGNATURE_CHECK": "false",
            "LOG_LEVEL": "WARNING",
        }
        # Both servers up at once; the rounds alternate between them, so a burst of load
        # from elsewhere on the machine hits both sides of a round's ratio alike (as in
        # bench/webhook_telegram.py).
        bare_parts: list[Result] = []
        full_parts: list[Result] = []
        with (
            gunicorn("bench.webhook_sms:bare_app()", env, warm_up, args.threads) as bare_port,
            gunicorn(args.app_spec, env, warm_up, args.threads) as port,
        ):
            bare_meter, full_meter = CpuMeter(bare_port, url), CpuMeter(port, url)
            for part in slices:
                # The baseline answers a round in a fraction of a second: repeat it (it
                # stores nothing) until it has run for a second, to steady its figure.
                started, bare_round = time.perf_counter(), []
                while not bare_round or time.perf_counter() - started < 1.0:
                    bare_round.append(
                        run_load("bare", bare_port, part, args.clients, None, bare_meter)
                    )
                bare_parts.append(merge("bare", bare_round))
                full_parts.append(
                    run_load("palaute", port, part, args.clients, expected, full_meter)
                )
            problems = check_database(url, args.numbers + len(warm))
            pair_failures = simultaneous_pairs(port, args.pairs)
        pair_problems, comment_first = check_pairs(url, args.pairs)
        if pair_failures:
            pair_problems.append(f"{pair_failures} failed requests")
    bare = merge("bare Flask endpoint", bare_parts)
    full = merge(f"palaute ({backend})", full_parts)
    ratios = sorted(f.rps / b.rps for b, f in zip(bare_parts, full_parts, strict=True) if b.rps)
    ratio = ratios[len(ratios) // 2] if ratios else 0.0
    print(bare.line())
    print(full.line())
    for measured in (bare, full):
        if measured.cpu_line():
            print(measured.cpu_line())
    for sample in full.samples:
        print(f"  e.g. {sample}")
    verdict = "; ".join(pair_problems[:3]) if pair_problems else "all handled in stored order"
    print(
        f"same number, two messages at once: {args.pairs} pairs ({comment_first} stored "
        f"comment first), {verdict}"
    )
    problems += pair_problems
    ok = ratio >= TARGET and not full.errors and not full.duplicate_mismatches and not problems
    print(f"ratio {ratio:.2f} (median of {rounds} alternating rounds: "
          f"{', '.join(f'{r:.2f}' for r in ratios)}; target >= {TARGET})  stored: "
          + ("; ".join(problems) if problems else "every message once, all runs completed")
          + ("" if ok else "  << BELOW TARGET OR INCONSISTENT"))  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--numbers", type=int, default=150)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--pairs", type=int, default=40, help="numbers sending two at once")
    parser.add_argument("--rounds", type=int, default=3, help="alternating bare/palaute rounds")
    parser.add_argument(
        "--threads", type=int, default=1, help="gunicorn threads per worker (1: sync workers)"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--app-spec", default="palaute.app:create_app()")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(f"{args.numbers} numbers x {len(SCRIPT)} signed SMS (+~{DUPLICATE_SHARE:.0%} "
          f"retried), {args.clients} client threads, gunicorn -w 2 --threads {args.threads} "
          "on 127.0.0.1")  # fmt: skip
    results = [bench(backend.strip(), args) for backend in args.backends.split(",") if backend]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
