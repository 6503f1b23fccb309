# certbench's labgrid session: one labgrid client (labgrid.remote.client.ClientSession, the
# library `labgrid-client` is built on) kept for a whole run, so a run pays for starting
# Python and importing gRPC once instead of at every acquire, show, power and release.
# Embedded in the certbench binary and run with the interpreter of the lab's
# `labgrid-client`:  PYTHON -c SCRIPT COORDINATOR PLACE
#
# Protocol, one JSON object per line: requests on stdin ({"op": "acquire"} ...), answers on
# the file descriptor standard output had at start (labgrid's own prints go to stderr).
# The first answer says whether the session is up:
#   {"ready": true, "version": V} | {"ready": false, "why": ...} (labgrid cannot be used
#   from this interpreter: certbench falls back to labgrid-client) | {"error": ...}
# then one answer per request: {"ok": true, ...} or {"ok": false, "error": ...}.
import json
import os
import sys

proto = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)
sys.stdout = sys.stderr


def say(obj):
    proto.write(json.dumps(obj) + "\n")
    proto.flush()


try:
    import argparse
    import asyncio
    import contextlib
    import io

    from labgrid.remote.client import ClientSession, Error
    from labgrid.util import labgrid_version
    from labgrid.util.proxy import proxymanager
except Exception as e:  # an interpreter without labgrid, or a labgrid without this API
    say({"ready": False, "why": f"{type(e).__name__}: {e}"})
    sys.exit(0)

coordinator, place_name, CONNECT_TIME = sys.argv[1], sys.argv[2], float(sys.argv[3])
args = argparse.Namespace(
    place=place_name, allow_unmatched=False, kick=False, action=None, delay=None, name=None,
    state=None, initial_state=None, debug=False,
)
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
try:
    address = proxymanager.get_grpc_address(coordinator, default_port=20408)
    session = ClientSession(address, loop, args=args, prog="certbench")
    loop.run_until_complete(asyncio.wait_for(session.start(), CONNECT_TIME))
except asyncio.TimeoutError:
    say({"error": f"the coordinator at {coordinator} did not answer within {CONNECT_TIME:g} s"})
    sys.exit(0)
except Exception as e:
    say({"error": f"the coordinator at {coordinator} could not be reached: {type(e).__name__}: {e}"})
    sys.exit(0)
say({"ready": True, "version": labgrid_version()})

def resources():
    place = session.get_acquired_place()
    found = []
    for (name, cls), res in session.get_target_resources(place).items():
        found.append({"name": name, "cls": cls, "params": res.args, "avail": res.avail})
    return {"acquired": place.acquired, "resources": found}


# one target per place for the session, so the power driver labgrid-client would make for
# each action is made once
targets = {}
make_target = session._get_target


def target_of(place):
    if place.name not in targets:
        targets[place.name] = make_target(place)
    return targets[place.name]


session._get_target = target_of


def serve(request):
    op = request.get("op")
    # the place and resource state as the coordinator has it now
    loop.run_until_complete(asyncio.wait_for(session.sync_with_coordinator(), CONNECT_TIME))
    if op == "acquire":
        loop.run_until_complete(session.acquire())
        return {}
    if op == "release":
        args.kick = bool(request.get("kick"))
        loop.run_until_complete(session.release())
        return {}
    if op == "resources":
        return resources()
    if op in ("on", "off"):
        args.action = op
        session.power()  # the place's power resource, through the driver labgrid-client uses
        return {}
    raise ValueError(f"unknown request {op!r}")


while True:
    # the event loop keeps running (answering the coordinator) while the next request is awaited
    line = loop.run_until_complete(loop.run_in_executor(None, sys.stdin.readline))
    if not line:
        break
    try:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            answer = serve(json.loads(line))
        answer.update(ok=True, said=out.getvalue())
    except asyncio.TimeoutError:
        answer = {"ok": False, "error": f"the coordinator at {coordinator} did not answer within {CONNECT_TIME:g} s"}
    except Error as e:
        answer = {"ok": False, "error": str(e)}
    except Exception as e:
        answer = {"ok": False, "error": f"{type(e).__name__}: {e}"}
    say(answer)

with contextlib.suppress(Exception):
    loop.run_until_complete(session.stop())
    loop.run_until_complete(session.close())
