"""Media ingestion: landing-zone titles (`titles`), one-pass decoding (`decode`) and shot
boundary detection (`shots`).

Submodules import PyAV, numpy and the optional detectors lazily where they can, so importing this
package stays cheap for the CLI.
"""
