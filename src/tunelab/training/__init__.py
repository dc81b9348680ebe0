"""tunelab.training"""
