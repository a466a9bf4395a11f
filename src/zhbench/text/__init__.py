"""Text granularities: char (one token per CJK character, ASCII runs whole) and word (jieba)."""
from zhbench.text.segment import GRANULARITIES, segment

__all__ = ["GRANULARITIES", "segment"]
