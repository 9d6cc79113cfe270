#!/usr/bin/env python3
"""pingbot: an example tchat bot in Python, standard library only.

It runs `tchat bot` as a child process and speaks JSON-RPC 2.0 with it over the
child's standard input and output, one JSON object per line (docs/bot-protocol.md).

    pingbot.py --create NAME [--tchat PATH] [-- TCHAT-BOT-FLAGS...]
    pingbot.py --join TOKEN  [--tchat PATH] [-- TCHAT-BOT-FLAGS...]

For example, with a profile made once by `tchat id --profile pingbot`:

    TCHAT_PASSPHRASE=... pingbot.py --create lobby -- --profile pingbot

It prints "invite TOKEN" (with --create) and "group ID" on its standard output, and in
its groups it answers:

    !ping        pong
    !echo TEXT   TEXT
    !members     how many members the group has
    !help        this list

and welcomes members who join. It stops when its standard input ends (Ctrl-D), on
Ctrl-C or on SIGTERM, by closing tchat's input: tchat then saves its state and exits.
"""

import argparse
import json
import os
import queue
import signal
import subprocess
import sys
import threading

HELP = "commands: !ping, !echo TEXT, !members, !help"


def log(*args):
    print("pingbot:", *args, file=sys.stderr, flush=True)


class RPCError(Exception):
    """An error object in a response: code and message (docs/bot-protocol.md)."""

    def __init__(self, error):
        super().__init__(f"{error.get('message')} ({error.get('code')})")
        self.code = error.get("code")
        self.message = error.get("message")


class Tchat:
    """A `tchat bot` child process: call() sends a request and waits for its response;
    notifications arrive on the queue `events` (None once tchat has exited)."""

    def __init__(self, argv):
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8"
        )
        self.events = queue.Queue()
        self._next_id = 0
        self._write_lock = threading.Lock()
        self._responses = {}
        self._cond = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            msg = json.loads(line)
            if isinstance(msg, dict) and "method" in msg:
                self.events.put(msg)  # a notification: no id
                continue
            with self._cond:
                self._responses[msg.get("id")] = msg
                self._cond.notify_all()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.events.put(None)

    def call(self, method, **params):
        with self._write_lock:
            self._next_id += 1
            rid = self._next_id
            req = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        with self._cond:
            self._cond.wait_for(lambda: rid in self._responses or self._closed)
            if rid not in self._responses:
                raise RPCError({"code": -8, "message": "tchat exited"})
            resp = self._responses.pop(rid)
        if "error" in resp:
            raise RPCError(resp["error"])
        return resp["result"]

    def close(self):
        """Closes tchat's input, which makes it save and exit; returns its exit status."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.proc.wait(timeout=60)


def answer(text, tchat, group_id):
    """The reply to a message, or None."""
    if text == "!ping":
        return "pong"
    if text.startswith("!echo "):
        return text[len("!echo "):]
    if text == "!members":
        members = tchat.call("listMembers", groupId=group_id)
        return f"{len(members)} members"
    if text == "!help":
        return HELP
    return None


def main():
    argv = sys.argv[1:]
    tchat_args = []
    if "--" in argv:
        i = argv.index("--")
        argv, tchat_args = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description="An example tchat bot driving `tchat bot`.")
    ap.add_argument("--tchat", default=os.environ.get("TCHAT", "tchat"), help="the tchat binary")
    what = ap.add_mutually_exclusive_group(required=True)
    what.add_argument("--create", metavar="NAME", help="create a group and print an invite")
    what.add_argument("--join", metavar="TOKEN", help="join the group of an invite token")
    args = ap.parse_args(argv)

    tchat = Tchat([args.tchat, "bot", *tchat_args])
    me = tchat.call("identity")["peerId"]
    if args.create:
        group = tchat.call("createGroup", name=args.create)
        print("invite", tchat.call("invite", groupId=group["groupId"], maxUses=0)["token"], flush=True)
    else:
        group = tchat.call("join", token=args.join)
    print("group", group["groupId"], flush=True)
    log("running as", me, "in", group["name"])

    # Stop on the end of our input, Ctrl-C or SIGTERM: all three wake the loop below.
    stop = threading.Event()

    def request_stop(*_):
        stop.set()
        tchat.events.put("stop")

    signal.signal(signal.SIGTERM, request_stop)
    threading.Thread(target=lambda: (sys.stdin.read(), request_stop()), daemon=True).start()

    try:
        while not stop.is_set():
            note = tchat.events.get()
            if note is None:
                log("tchat exited")
                return 1
            if note == "stop":
                break
            method, params = note["method"], note.get("params", {})
            try:
                if method == "message" and params["sender"] != me:
                    reply = answer(params["message"].strip(), tchat, params["groupId"])
                    if reply is not None:
                        tchat.call("send", groupId=params["groupId"], message=reply)
                elif method == "memberJoined" and not params["self"]:
                    nick = params["peerId"][-6:]
                    tchat.call("send", groupId=params["groupId"], message=f"welcome, {nick}! {HELP}")
                elif method in ("memberLeft", "memberRemoved") and params["self"]:
                    log("no longer in", params["groupId"])
                elif method == "addDeclined":
                    log(params["from"], "tried to add us to", params["groupId"], "(run tchat bot with --auto-accept to accept)")
                elif method == "error":
                    log("tchat error:", params.get("message"))
            except RPCError as e:
                log(f"{method}: {e}")
    except KeyboardInterrupt:
        pass
    status = tchat.close()
    log("stopped; tchat exited with", status)
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
