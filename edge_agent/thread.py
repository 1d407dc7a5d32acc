"""The agent on an event loop of its own in a background thread, for hosts that are not asyncio
programs themselves (the local stack of ``make run``, which starts one agent next to the API)::

    from edge_agent.config import AgentConfig
    from edge_agent.thread import AgentThread

    agent = AgentThread(AgentConfig(agent_id=..., agent_secret=..., cloud_url=api_url,
                                    listen_host="127.0.0.1", listen_port=9100, data_dir=".local/edge"))
    agent.start()          # returns once it listens
    ...
    agent.stop()           # the same clean stop as SIGTERM
"""

from __future__ import annotations

import asyncio
import threading

from . import event_loop
from .agent import EdgeAgent
from .config import AgentConfig

__all__ = ["AgentThread"]


class AgentThread:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.agent: EdgeAgent | None = None
        self._loop = event_loop.new_event_loop(config.event_loop)  # uvloop when installed, as python -m edge_agent
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge-agent", daemon=True)

    @property
    def port(self) -> int:
        assert self.agent is not None
        return self.agent.port

    def start(self, timeout: float = 30.0) -> "AgentThread":
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the edge agent did not start")
        if self._failure is not None:
            raise RuntimeError("the edge agent did not start") from self._failure
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self.agent is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.agent.stop(), self._loop).result(timeout)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self.agent = self._loop.run_until_complete(EdgeAgent(self.config).start())
        except BaseException as exc:  # noqa: BLE001 - reported to start()'s caller
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_until_complete(self.agent.run_until_stopped())
        self._loop.close()
