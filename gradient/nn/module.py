"""(being written)"""


class Module:
    pass
