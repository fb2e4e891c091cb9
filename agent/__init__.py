"""vmprovider's VM host agent: the model, its rules, its store, its backends, the hpvm* CLI.

The agent knows nothing of CIM. Every change and every read goes through `agent.api.Agent`.
"""
