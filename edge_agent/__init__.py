"""The ScanPay edge agent: the terminals' TCP link (protocol.md) on the shop network, and their
bridge to the cloud's signed edge API. Never imports chalicelib; no AWS library.

- :mod:`.protocol`: sans-IO codec and session state machines.
- :mod:`.server`: the asyncio TCP server; :mod:`.agent`: the parts wired together and the
  request handlers' entry points (:mod:`.payments`, :mod:`.orders`, :mod:`.uploads`).
- :mod:`.cloud` (+ :mod:`.signing`, :mod:`.keybox`): the HTTPS client of the edge API.
- :mod:`.store`: the durable SQLite state; :mod:`.once`: exactly once per (tid, txn).
- :mod:`.terminals`, :mod:`.pushes`, :mod:`.status`, :mod:`.blacklist`: what the cloud tells the
  agent and what the agent tells the cloud, in background loops.
- :mod:`.simulator`: terminal simulator, stub cloud, crash loop (tools, not used by the agent).

Run it with ``python -m edge_agent --config FILE`` (:mod:`.__main__`, :mod:`.config`).
"""
