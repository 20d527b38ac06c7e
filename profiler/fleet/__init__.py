"""The fleet: profile many devices from one coordinator over a Ray cluster.

Ray is an optional extra (``pip install -e '.[fleet]'``). Rooms:

- ``connection``: Ray import, token authentication, the coordinator's saved address, connecting.
- ``cluster``: ``fleet up`` (a Ray head) and ``fleet join`` (a device node) as ``ray start`` commands.
- ``registry``: which nodes are devices, their fingerprints and versions (``fleet devices``).
- ``hub``: the actor on the coordinator that receives streamed rows and serves model chunks.
- ``transfer``: getting a model file onto a device, verified by sha256.
- ``device_task``: what runs on a device: the same run pipeline (``profiler.run``) as ``profiler run``.
- ``dispatch``: the coordinator's loop: one slot per device, rows into the store, faults, resume.
- ``output``: the device x model x test table and the scoreboard per device.

Imports flow one way: dispatch -> (registry, hub, device_task) -> transfer -> connection.
"""

# Every device node advertises exactly one of this resource; a measurement claims it, so a device
# never runs two measurements at once.
SLOT_RESOURCE = "profiler_slot"
# The node label that carries the device name (ray start --labels).
DEVICE_LABEL = "profiler-device"
