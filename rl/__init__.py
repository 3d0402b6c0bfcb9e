"""raptor.rl"""
