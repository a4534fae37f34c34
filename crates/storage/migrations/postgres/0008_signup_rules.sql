-- Rules can be scoped to sign-ups.
ALTER TABLE rules DROP CONSTRAINT rules_scope_check;
ALTER TABLE rules ADD CONSTRAINT rules_scope_check CHECK (scope IN ('usage', 'activity', 'signup'));
