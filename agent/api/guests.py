"""(in progress)"""


class GuestOps:
    pass
