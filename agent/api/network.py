"""(in progress)"""


class VswitchOps:
    pass
