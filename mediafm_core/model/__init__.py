"""The MediaFM shot encoder: config, model and Masked Shot Modelling."""
