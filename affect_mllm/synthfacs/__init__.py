"""SynthFACS: procedural face-and-voice clips drawn from FACS Action Unit and prosody parameters.

`face` renders frames from AU intensities, `nuisance` samples identities, styles and difficulty levels,
`voice` synthesises a speech-like voice track from prosody parameters. The clip generator builds on them.
"""
