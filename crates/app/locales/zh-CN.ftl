greeting = { $customer }，您好：
signoff = 此致
    { $partner }

invoice_due_soon-subject = 发票 { $invoice } 将于 { $due_date } 到期
invoice_due_soon-body = 金额为 { $amount } 的发票 { $invoice } 将于 { $due_date } 到期。请在此之前付款，以确保您的服务不受影响。
invoice_due_soon-late-subject = 发票 { $invoice } 已于 { $due_date } 到期
invoice_due_soon-late-body = 金额为 { $amount } 的发票 { $invoice } 已于 { $due_date } 到期，现已逾期 { $days } 天。请尽快付款，以确保您的服务不受影响。
payment_overdue-subject = 发票 { $invoice } 已逾期
payment_overdue-body = 金额为 { $amount } 的发票 { $invoice } 已于 { $due_date } 到期，现已逾期。请尽快付款。
final_warning-subject = 最后警告：发票 { $invoice } 尚未付款
final_warning-body = 发票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。这是您的服务受到影响之前的最后警告。
purchases_blocked-subject = 新购买已被阻止：发票 { $invoice } 尚未付款
purchases_blocked-body = 发票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
access_disabled-subject = 访问已被阻止：发票 { $invoice } 尚未付款
access_disabled-body = 发票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
service_suspended-subject = 订阅已暂停：发票 { $invoice } 尚未付款
service_suspended-body = 发票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
service_cancelled-subject = 订阅已取消：发票 { $invoice } 尚未付款
service_cancelled-body = 发票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。

applied-none = 您的服务目前尚未受到影响。
applied-block_new_purchases = 在发票付清之前，新购买将被阻止；您现有的服务将继续运行。
applied-disable_access = 在发票付清之前，您对订阅的访问现已被阻止。
applied-suspend = 在发票付清之前，您的订阅现已暂停。
applied-cancel = 您的订阅现已取消。
applied-awaiting = 由于发票未付，您的订阅现在可能会受到限制；我们的团队将与您确认。

next-step = 如果发票在 { $date } 仍未付款：{ $effect }
paid-already = 如果您已付款，谢谢，请忽略本通知。

effect-none = 您将收到另一份通知。
effect-block_new_purchases = 新购买将被阻止。
effect-disable_access = 您对订阅的访问将被阻止。
effect-suspend = 您的订阅将被暂停。
effect-cancel = 您的订阅将被取消。

policy-title = 催收政策
policy-intro = 本政策说明我们何时发送付款通知，以及未付款何时会影响您对订阅的访问。每张未付发票都按以下步骤处理，从其各自的到期日起计算：
policy-when-before = 到期日前 { $days } 天
policy-when-on = 到期当日
policy-when-after = 到期日后 { $days } 天
policy-step = { $when }：{ $notice }。{ $effect }
policy-min-notice = 影响您服务的步骤，至少要在上一份通知发出 { $days } 天后才会执行。
policy-restore = 所有逾期发票付清后，被阻止的访问和被暂停的订阅将恢复。
policy-no-cancel = 在您的云中，订阅不会因未付款而被取消：在发票付清之前，访问将保持阻止状态。
policy-minimum = 未付金额低于 { $amount } 的发票不进入上述步骤。

title-invoice_due_soon = 付款提醒
title-payment_overdue = 逾期通知
title-final_warning = 最后警告
title-purchases_blocked = 新购买被阻止的通知
title-access_disabled = 访问被阻止的通知
title-service_suspended = 订阅被暂停的通知
title-service_cancelled = 订阅被取消的通知

status-none = 您的服务不受影响。
status-block_new_purchases = 新购买被阻止；现有服务继续运行。
status-disable_access = 您对订阅的访问被阻止。
status-suspend = 您的订阅被暂停。
status-cancel = 您的订阅被取消。

# 从案件对订阅采取的操作。
action-suspend-subject = 您的订阅 { $offer } 已暂停
action-suspend-body = 我们正在调查您账户上的异常活动，已暂停您的订阅 { $offer }。您的数据已保留。请与我们联系，以便尽快恢复。
action-disable_access-subject = 您的订阅 { $offer } 的访问已被阻止
action-disable_access-body = 我们正在调查您账户上的异常活动，已阻止对您的订阅 { $offer } 的访问。您的数据已保留。请与我们联系，以便尽快恢复。
action-reactivate-subject = 您的订阅 { $offer } 已恢复
action-reactivate-body = 您的订阅 { $offer } 已恢复正常。感谢您的耐心等待。
action-cancel-subject = 您的订阅 { $offer } 已取消
action-cancel-body = 我们已取消您的订阅 { $offer }。如有疑问，请与我们联系。
