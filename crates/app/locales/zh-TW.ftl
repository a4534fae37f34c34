greeting = { $customer }，您好：
signoff = 敬祝 順心
    { $partner }

invoice_due_soon-subject = 發票 { $invoice } 將於 { $due_date } 到期
invoice_due_soon-body = 金額為 { $amount } 的發票 { $invoice } 將於 { $due_date } 到期。請在此之前付款，以確保您的服務不受影響。
invoice_due_soon-late-subject = 發票 { $invoice } 已於 { $due_date } 到期
invoice_due_soon-late-body = 金額為 { $amount } 的發票 { $invoice } 已於 { $due_date } 到期，現已逾期 { $days } 天。請盡快付款，以確保您的服務不受影響。
payment_overdue-subject = 發票 { $invoice } 已逾期
payment_overdue-body = 金額為 { $amount } 的發票 { $invoice } 已於 { $due_date } 到期，現已逾期。請盡快付款。
final_warning-subject = 最後警告：發票 { $invoice } 尚未付款
final_warning-body = 發票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。這是您的服務受到影響之前的最後警告。
purchases_blocked-subject = 新購買已被封鎖：發票 { $invoice } 尚未付款
purchases_blocked-body = 發票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
access_disabled-subject = 存取已被封鎖：發票 { $invoice } 尚未付款
access_disabled-body = 發票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
service_suspended-subject = 訂閱已暫停：發票 { $invoice } 尚未付款
service_suspended-body = 發票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。
service_cancelled-subject = 訂閱已取消：發票 { $invoice } 尚未付款
service_cancelled-body = 發票 { $invoice }（{ $amount }，到期日 { $due_date }）仍未付款。

applied-none = 您的服務目前尚未受到影響。
applied-block_new_purchases = 在發票付清之前，新購買將被封鎖；您現有的服務將繼續運作。
applied-disable_access = 在發票付清之前，您對訂閱的存取現已被封鎖。
applied-suspend = 在發票付清之前，您的訂閱現已暫停。
applied-cancel = 您的訂閱現已取消。
applied-awaiting = 由於發票未付，您的訂閱現在可能會受到限制；我們的團隊將與您確認。

next-step = 如果發票在 { $date } 仍未付款：{ $effect }
paid-already = 如果您已付款，謝謝，請忽略本通知。

effect-none = 您將收到另一份通知。
effect-block_new_purchases = 新購買將被封鎖。
effect-disable_access = 您對訂閱的存取將被封鎖。
effect-suspend = 您的訂閱將被暫停。
effect-cancel = 您的訂閱將被取消。

policy-title = 催收政策
policy-intro = 本政策說明我們何時發送付款通知，以及未付款何時會影響您對訂閱的存取。每張未付發票都依以下步驟處理，從其各自的到期日起算：
policy-when-before = 到期日前 { $days } 天
policy-when-on = 到期當日
policy-when-after = 到期日後 { $days } 天
policy-step = { $when }：{ $notice }。{ $effect }
policy-min-notice = 影響您服務的步驟，至少要在上一份通知發出 { $days } 天後才會執行。
policy-restore = 所有逾期發票付清後，被封鎖的存取和被暫停的訂閱將會恢復。
policy-no-cancel = 在您的雲端中，訂閱不會因未付款而被取消：在發票付清之前，存取將維持封鎖狀態。
policy-minimum = 未付金額低於 { $amount } 的發票不進入上述步驟。

title-invoice_due_soon = 付款提醒
title-payment_overdue = 逾期通知
title-final_warning = 最後警告
title-purchases_blocked = 新購買被封鎖的通知
title-access_disabled = 存取被封鎖的通知
title-service_suspended = 訂閱被暫停的通知
title-service_cancelled = 訂閱被取消的通知

status-none = 您的服務不受影響。
status-block_new_purchases = 新購買被封鎖；現有服務繼續運作。
status-disable_access = 您對訂閱的存取被封鎖。
status-suspend = 您的訂閱被暫停。
status-cancel = 您的訂閱被取消。

# 從案件對訂閱採取的動作。
action-suspend-subject = 您的訂閱 { $offer } 已暫停
action-suspend-body = 我們正在調查您帳戶上的異常活動，已暫停您的訂閱 { $offer }。您的資料已保留。請與我們聯絡，以便盡快恢復。
action-disable_access-subject = 您的訂閱 { $offer } 的存取已被封鎖
action-disable_access-body = 我們正在調查您帳戶上的異常活動，已封鎖對您的訂閱 { $offer } 的存取。您的資料已保留。請與我們聯絡，以便盡快恢復。
action-reactivate-subject = 您的訂閱 { $offer } 已恢復
action-reactivate-body = 您的訂閱 { $offer } 已恢復正常。感謝您的耐心等候。
action-cancel-subject = 您的訂閱 { $offer } 已取消
action-cancel-body = 我們已取消您的訂閱 { $offer }。如有疑問，請與我們聯絡。
