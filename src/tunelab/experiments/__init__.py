"""tunelab.experiments"""
