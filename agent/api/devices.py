"""(in progress)"""


class DeviceOps:
    pass
