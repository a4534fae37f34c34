-- The open invoices of a batch of customers (the dunning run, reminders, exposure) read
-- through an index of open invoices only, not every invoice the customers ever had.
CREATE INDEX invoices_open ON invoices(tenant_id, customer_id) WHERE open_minor > 0;
