-- Automatic recovery replaces only the crash-looping pods of a deployment whose other pods
-- wait for a node (kubernetes.delete_pod), rather than restarting it: which action each
-- recorded restart was, and the pods it replaced. Every earlier row was a rollout restart.
ALTER TABLE auto_recovery_restarts ADD COLUMN action TEXT NOT NULL DEFAULT 'kubernetes.restart';
ALTER TABLE auto_recovery_restarts ADD COLUMN pods TEXT NOT NULL DEFAULT '';
