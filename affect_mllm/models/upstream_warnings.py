"""Warnings of the pinned transformers (5.19) that no user can act on, dropped by their exact text.

Every `Qwen2_5OmniConfig` that transformers builds (each load of a Qwen2.5-Omni folder or processor, the published
checkpoints included) prints 7 lines "Model config: tts_text_start_token_id must be `None` or an integer within the
vocabulary (between 0 and 8447) ...". They do not come from the folder: huggingface_hub's strict-dataclass check of
the `talker_config` field formats its (caught) error message with `repr` of the talker config, that repr diffs
against a default `Qwen2_5OmniTalkerConfig()`, and the default talker's token-id check compares thinker-vocabulary
ids (text, vision and audio markers, 151647 and up, which the talker reads from the thinker by design) with its own
8448-entry codec vocabulary. The published Qwen2.5-Omni-3B config prints the same 7 lines; giving our models other
ids cannot silence them. The filter matches only those fields against that 8448-entry vocabulary.
"""

from __future__ import annotations

import logging
import re

# The talker fields that hold thinker-vocabulary ids, checked against the default talker's codec vocabulary.
_DEFAULT_TALKER_IDS = re.compile(
    r"^Model config: (tts_text_(start|end|pad)|vision_(start|end)|audio_(start|end))_token_id must be `None` or an "
    r"integer within the vocabulary \(between 0 and 8447\)"
)
_LOGGER = "transformers.configuration_utils"


class DefaultTalkerIdsFilter(logging.Filter):
    """Drops the 7 default-talker token-id warnings (module docstring), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _DEFAULT_TALKER_IDS.match(record.getMessage())


def quiet_default_talker_warnings() -> None:
    """Install the filter on transformers' config logger once per process (later calls change nothing)."""
    logger = logging.getLogger(_LOGGER)
    if not any(isinstance(f, DefaultTalkerIdsFilter) for f in logger.filters):
        logger.addFilter(DefaultTalkerIdsFilter())
