"""tunelab.tasks"""
