"""Register a model version, attach an evaluation report and request a
promotion, with Python's requests only (see docs/ci.md).

    export SLIPWAY_URL=http://localhost:8080 SLIPWAY_TOKEN=slw_...
    python3 slipway_ci.py churn model.pkl report.json staging

Exit status, as `slipway promote`: 0 promoted, 3 rejected or cancelled,
4 waiting for review, 1 any other error.
"""
import hashlib
import os
import sys
import time
import uuid

import requests

URL = os.environ["SLIPWAY_URL"].rstrip("/")
session = requests.Session()
session.headers["Authorization"] = "Bearer " + os.environ["SLIPWAY_TOKEN"]


class SlipwayError(Exception):
    """An error answered by Slipway, with its code, message and request id."""


def _check(res):
    if res.ok:
        return res.json()
    try:
        err = res.json()["error"]
        msg = f"{err['code']}: {err['message']}"
    except (ValueError, KeyError, TypeError):
        msg = res.text[:200]
    raise SlipwayError(f"{res.request.method} {res.url}: {res.status_code} {msg} "
                       f"(request id {res.headers.get('X-Request-Id')})")


def _send(method, path, json=None, file=None, params=None, retries=3):
    """Send a request; a POST carries an Idempotency-Key, so that a retry
    after a dropped connection or a 502/503/504 gets the first answer
    instead of doing the work twice. A file is streamed, never read whole,
    and reopened for each attempt."""
    headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
    for attempt in range(retries + 1):
        try:
            if file is None:
                res = session.request(method, URL + path, json=json, params=params,
                                      headers=headers, timeout=(10, 300))
            else:
                with open(file, "rb") as f:
                    res = session.request(method, URL + path, data=f, params=params,
                                          headers={**headers, "Content-Type": "application/json"}
                                          if method == "POST" else headers, timeout=(10, 3600))
        except (requests.ConnectionError, requests.Timeout):
            if attempt == retries:
                raise
        else:
            if res.status_code not in (502, 503, 504) or attempt == retries:
                return _check(res)
        time.sleep(2 ** attempt)


def register_version(model, files, metadata=None):
    """Register a version of model with its files, in steps: a draft that
    declares each file's size and SHA-256, one streamed upload per file,
    then finalize. files maps artifact paths (model/model.pkl) to local
    files; metadata holds the version's fields (framework, params, source,
    tags, run, training_data...). Returns the version object."""
    artifacts = []
    for path, local in files.items():
        digest, size = hashlib.sha256(), 0
        with open(local, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        artifacts.append({"path": path, "size": size, "sha256": digest.hexdigest()})
    draft = _send("POST", f"/api/v1/models/{model}/versions",
                  json={**(metadata or {}), "artifacts": artifacts})
    for upload in draft["uploads"]:
        _send("PUT", upload["upload_url"], file=files[upload["path"]])
    return _send("POST", f"/api/v1/models/{model}/versions/{draft['version']}/finalize")


def attach_report(model, version, report_file, suite, **params):
    """Attach an evaluation report as the suite wrote it. params: format,
    producer, evaluation_dataset and evaluation_dataset_version."""
    return _send("POST", f"/api/v1/models/{model}/versions/{version}/evaluations",
                 file=report_file, params={"suite": suite, **params})


def request_promotion(model, version, stage, reason):
    """Ask for stage to move to version: Slipway decides at once."""
    return _send("POST", f"/api/v1/models/{model}/versions/{version}/promotions",
                 json={"stage": stage, "reason": reason})


def wait_for_decision(promotion, timeout=1800, interval=10):
    """Poll a request while it waits for reviewers, up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while promotion["status"] == "pending_approval" and time.monotonic() < deadline:
        time.sleep(interval)
        promotion = _send("GET", f"/api/v1/promotions/{promotion['id']}")
    return promotion


def print_decision(p):
    print(f"promotion {p['id']}: {p['model']} version {p['version']} -> {p['stage']}: {p['status']}")
    for r in p["rules"]:
        mark = "skip" if r.get("skipped") else "wait" if r.get("pending") else "pass" if r["passed"] else "FAIL"
        print(f"  {mark}  {r['name']}: {r['message']}")
    print(f"  {p['message']}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    model, model_file, report_file, stage = sys.argv[1:]
    try:
        version = register_version(model, {"model/" + os.path.basename(model_file): model_file},
                                   {"framework": "sklearn", "source": {"orchestrator": "script"}})
        print(f"registered {model} version {version['version']}")
        report = attach_report(model, version["version"], report_file, suite="offline", producer="slipway_ci.py")
        print(f"attached report {report['id']}: {report['metric_count']} metrics")
        promotion = request_promotion(model, version["version"], stage, reason="CI: offline evaluation attached")
        promotion = wait_for_decision(promotion, timeout=int(os.environ.get("SLIPWAY_WAIT_SECONDS", "0")))
    except (SlipwayError, requests.RequestException) as e:
        print(f"slipway_ci: {e}", file=sys.stderr)
        sys.exit(1)
    print_decision(promotion)
    sys.exit({"promoted": 0, "pending_approval": 4}.get(promotion["status"], 3))
