"""The official Python SDK (`mcp` from PyPI) against /mcp, driven by
`cargo xtask e2e` (xtask/src/e2e/mcp.rs).

Usage: python py_client.py URL KEY PLAN_JSON MODE
MODE is `auto` (the SDK's default: it probes `server/discover` and falls back
to the initialize handshake) or `legacy` (the handshake only). It prints one
JSON line {"event": "waiting", "after": N} before it waits (the harness then
delivers a mail) and a last line {"event": "done", ...}.
"""

import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client


async def main() -> None:
    url, key, plan_json, mode = sys.argv[1:5]
    plan = json.loads(plan_json)
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"},
        timeout=httpx2.Timeout(30.0, read=90.0),
    )
    out = {"event": "done", "mode": mode, "called": []}
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        out["negotiated"] = client.protocol_version

        async def call(name, args):
            result = await client.call_tool(name, args)
            if result.is_error:
                raise SystemExit(f"{name} failed: {result.content[0].text}")
            text = json.loads(result.content[0].text)
            if text != result.structured_content:
                raise SystemExit(f"{name}: the text block is not the structured content")
            out["called"].append(name)
            return result

        listed = await client.list_tools()
        out["tools"] = [tool.name for tool in listed.tools]
        me = (await call("whoami", {})).structured_content
        out["email"] = me["email"]
        message = (await call("get_message", {"id": plan["message"]})).structured_content
        out["code"] = message["codes"][0]["value"]
        await call("list_messages", {"limit": 5})
        await call("search_messages", {"q": "verification"})
        threads = (await call("list_threads", {})).structured_content
        await call("get_thread", {"id": threads["threads"][0]["id"]})
        await call("mark_read", {"id": plan["message"], "read": False})
        kinds = {}
        for part in plan["parts"]:
            result = await call("get_attachment", {"messageId": plan["message"], "attachmentId": part})
            kinds[part] = result.content[1].type
        out["attachments"] = kinds
        await call("send_message", {"to": plan["peer"], "subject": "from python", "text": "hello"})
        await call("reply_to_message", {"id": plan["fromPeer"], "text": "a reply from python"})
        peer = (await call("get_message", {"id": plan["fromPeer"]})).structured_content
        await call("delete_thread", {"id": peer["threadId"]})
        await call("forward_message", {"id": plan["message"], "to": plan["peer"]})
        newest = (await call("list_messages", {"limit": 1})).structured_content["messages"][0]["id"]
        print(json.dumps({"event": "waiting", "after": newest}), flush=True)
        waited = (await call("wait_for_message", {"after": newest, "timeout": 30})).structured_content
        out["waited"] = {
            "subject": (waited["message"] or {}).get("subject"),
            "code": ((waited["message"] or {}).get("codes") or [{}])[0].get("value"),
        }
        await call("delete_message", {"id": plan["message"]})
        gone = await client.call_tool("get_message", {"id": plan["message"]})
        out["deletedIsError"] = gone.is_error
    print(json.dumps(out), flush=True)


asyncio.run(main())
