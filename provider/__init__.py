"""vmprovider's CIM server: transport, CIM-XML, operations, and providers mapping agent <-> CIM.

The provider knows nothing of files or libvirt: it reaches the host only through `agent.api`.
"""
