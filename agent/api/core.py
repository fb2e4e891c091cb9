"""(in progress)"""


class AgentCore:
    pass
