"""affect-mllm: teach video+audio LLMs to recognise emotions and explain them.

The library is the pipeline, read top to bottom: schema/media -> prompts -> models -> answer parsing
-> rewards/metrics -> report. Nothing heavy is imported here.
"""

__version__ = "0.1.0"
