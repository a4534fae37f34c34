# riskdesk customer notices — English (the reference: every other language has these keys).
greeting = Hello { $customer },
signoff = Kind regards,
    { $partner }

invoice_due_soon-subject = Invoice { $invoice } is due on { $due_date }
invoice_due_soon-body = Invoice { $invoice } for { $amount } is due on { $due_date }. Please pay it by then so your services continue without interruption.
invoice_due_soon-late-subject = Invoice { $invoice } was due on { $due_date }
invoice_due_soon-late-body = Invoice { $invoice } for { $amount } was due on { $due_date } and is now { $days ->
    [one] 1 day
   *[other] { $days } days
} overdue. Please pay it as soon as possible so your services continue without interruption.
payment_overdue-subject = Invoice { $invoice } is overdue
payment_overdue-body = Invoice { $invoice } for { $amount } was due on { $due_date } and is now overdue. Please pay it as soon as possible.
final_warning-subject = Final warning: invoice { $invoice } is unpaid
final_warning-body = Invoice { $invoice } ({ $amount }, due on { $due_date }) is still unpaid. This is our final warning before your services are affected.
purchases_blocked-subject = New purchases blocked: invoice { $invoice } is unpaid
purchases_blocked-body = Invoice { $invoice } ({ $amount }, due on { $due_date }) is still unpaid.
access_disabled-subject = Access blocked: invoice { $invoice } is unpaid
access_disabled-body = Invoice { $invoice } ({ $amount }, due on { $due_date }) is still unpaid.
service_suspended-subject = Subscriptions suspended: invoice { $invoice } is unpaid
service_suspended-body = Invoice { $invoice } ({ $amount }, due on { $due_date }) is still unpaid.
service_cancelled-subject = Subscriptions cancelled: invoice { $invoice } is unpaid
service_cancelled-body = Invoice { $invoice } ({ $amount }, due on { $due_date }) is still unpaid.

applied-none = Your services are not affected yet.
applied-block_new_purchases = New purchases are blocked until the invoice is paid; your current services continue.
applied-disable_access = Access to your subscriptions is now blocked until the invoice is paid.
applied-suspend = Your subscriptions are now suspended until the invoice is paid.
applied-cancel = Your subscriptions are now cancelled.
applied-awaiting = Because the invoice is unpaid, your subscriptions may now be restricted; our team will confirm this with you.

next-step = If the invoice is still unpaid on { $date }: { $effect }
paid-already = If you have already paid, thank you, and please ignore this notice.

effect-none = you will receive another notice.
effect-block_new_purchases = new purchases will be blocked.
effect-disable_access = access to your subscriptions will be blocked.
effect-suspend = your subscriptions will be suspended.
effect-cancel = your subscriptions will be cancelled.

policy-title = Collections policy
policy-intro = This policy explains when we send payment notices and when access to your subscriptions is affected by non-payment. Each unpaid invoice follows these steps, counted from its own due date:
policy-when-before = { $days ->
    [one] 1 day before the due date
   *[other] { $days } days before the due date
}
policy-when-on = On the due date
policy-when-after = { $days ->
    [one] 1 day after the due date
   *[other] { $days } days after the due date
}
policy-step = { $when }: { $notice }. { $effect }
policy-min-notice = A step that affects your services is never taken before the previous notice has been out for { $days ->
    [one] 1 day
   *[other] { $days } days
}.
policy-restore = When every overdue invoice is paid, blocked access and suspended subscriptions are restored.
policy-no-cancel = On your cloud, subscriptions are not cancelled for non-payment: access stays blocked until the invoice is paid.
policy-minimum = Invoices with less than { $amount } open do not move along these steps.

title-invoice_due_soon = a payment reminder
title-payment_overdue = an overdue notice
title-final_warning = a final warning
title-purchases_blocked = a notice that new purchases are blocked
title-access_disabled = a notice that access is blocked
title-service_suspended = a notice that subscriptions are suspended
title-service_cancelled = a notice that subscriptions are cancelled

status-none = Your services are not affected.
status-block_new_purchases = New purchases are blocked; current services continue.
status-disable_access = Access to your subscriptions is blocked.
status-suspend = Your subscriptions are suspended.
status-cancel = Your subscriptions are cancelled.

# Actions taken on a customer's subscription from a case.
action-suspend-subject = Your subscription { $offer } is suspended
action-suspend-body = We have suspended your subscription { $offer } while we look into unusual activity on your account. Your data is kept. Please contact us so we can restore it as soon as possible.
action-disable_access-subject = Access to your subscription { $offer } is blocked
action-disable_access-body = We have blocked access to your subscription { $offer } while we look into unusual activity on your account. Your data is kept. Please contact us so we can restore it as soon as possible.
action-reactivate-subject = Your subscription { $offer } is active again
action-reactivate-body = Your subscription { $offer } is active again. Thank you for your patience.
action-cancel-subject = Your subscription { $offer } is cancelled
action-cancel-body = We have cancelled your subscription { $offer }. Please contact us if you have questions.
