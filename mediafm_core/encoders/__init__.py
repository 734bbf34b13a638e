"""Unimodal encoders (video, audio, text) behind one protocol, chosen by a profile.

Import submodules directly (`mediafm_core.encoders.profiles`); this package imports nothing
heavy so the CLI can start without torch.
"""
