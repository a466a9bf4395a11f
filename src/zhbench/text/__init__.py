"""Text granularities: char (one token per CJK character, ASCII runs whole) and word (jieba)."""
from zhbench.text.segment import GRANULARITIES, control_character, describe_control, segment

__all__ = ["GRANULARITIES", "control_character", "describe_control", "segment"]
