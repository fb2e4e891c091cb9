"""(in progress)"""


class StatusViews:
    pass
