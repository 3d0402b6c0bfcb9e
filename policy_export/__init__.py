"""raptor.policy_export"""
