"""How deep arrays and objects nest in a JSON text, measured with numpy: no recursion, whatever the depth."""

import numpy as np

_OPEN, _CLOSE = b"{[", b"}]"
_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def nesting_depth(value: bytes) -> int:
    """How deep arrays and objects nest, brackets inside strings not counted. numpy, no recursion."""
    if not value:
        return 0
    data = np.frombuffer(value, np.uint8)
    backslash = data == _BACKSLASH
    # A quote is escaped when an odd run of backslashes precedes it.
    at = np.arange(data.size)
    last_other = np.maximum.accumulate(np.where(backslash, -1, at))
    run = np.empty(data.size, np.int64)
    run[0] = 0
    run[1:] = at[:-1] - last_other[:-1]
    quotes = (data == _QUOTE) & (run % 2 == 0)
    outside = np.cumsum(quotes) % 2 == 0  # a closing quote counts as outside; it is no bracket
    steps = ((data == _OPEN[0]) | (data == _OPEN[1])).astype(np.int64) - ((data == _CLOSE[0]) | (data == _CLOSE[1]))
    return int(np.cumsum(np.where(outside, steps, 0)).max(initial=0))
