"""raptor.policy"""
