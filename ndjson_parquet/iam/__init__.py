"""Least privilege, checked statically: every AWS call the code makes (``callmap``) is evaluated
against the policy of the role that makes it (``check``), and every grant must be needed by a call."""
