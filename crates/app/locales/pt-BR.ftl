greeting = Olá, { $customer },
signoff = Atenciosamente,
    { $partner }

invoice_due_soon-subject = A fatura { $invoice } vence em { $due_date }
invoice_due_soon-body = A fatura { $invoice } no valor de { $amount } vence em { $due_date }. Pague até essa data para que seus serviços continuem sem interrupção.
invoice_due_soon-late-subject = A fatura { $invoice } venceu em { $due_date }
invoice_due_soon-late-body = A fatura { $invoice } no valor de { $amount } venceu em { $due_date } e está { $days ->
    [one] 1 dia
   *[other] { $days } dias
} em atraso. Pague-a o quanto antes para que seus serviços continuem sem interrupção.
payment_overdue-subject = A fatura { $invoice } está vencida
payment_overdue-body = A fatura { $invoice } no valor de { $amount } venceu em { $due_date } e está em atraso. Pague-a o quanto antes.
final_warning-subject = Último aviso: a fatura { $invoice } não foi paga
final_warning-body = A fatura { $invoice } ({ $amount }, vencimento em { $due_date }) continua em aberto. Este é o nosso último aviso antes que seus serviços sejam afetados.
purchases_blocked-subject = Novas compras bloqueadas: a fatura { $invoice } não foi paga
purchases_blocked-body = A fatura { $invoice } ({ $amount }, vencimento em { $due_date }) continua em aberto.
access_disabled-subject = Acesso bloqueado: a fatura { $invoice } não foi paga
access_disabled-body = A fatura { $invoice } ({ $amount }, vencimento em { $due_date }) continua em aberto.
service_suspended-subject = Assinaturas suspensas: a fatura { $invoice } não foi paga
service_suspended-body = A fatura { $invoice } ({ $amount }, vencimento em { $due_date }) continua em aberto.
service_cancelled-subject = Assinaturas canceladas: a fatura { $invoice } não foi paga
service_cancelled-body = A fatura { $invoice } ({ $amount }, vencimento em { $due_date }) continua em aberto.

applied-none = Seus serviços ainda não foram afetados.
applied-block_new_purchases = Novas compras estão bloqueadas até o pagamento da fatura; seus serviços atuais continuam.
applied-disable_access = O acesso às suas assinaturas está bloqueado até o pagamento da fatura.
applied-suspend = Suas assinaturas estão suspensas até o pagamento da fatura.
applied-cancel = Suas assinaturas foram canceladas.
applied-awaiting = Como a fatura não foi paga, suas assinaturas podem ser restringidas a partir de agora; nossa equipe confirmará isso com você.

next-step = Se a fatura continuar em aberto em { $date }: { $effect }
paid-already = Se você já pagou, obrigado, e desconsidere este aviso.

effect-none = você receberá um novo aviso.
effect-block_new_purchases = novas compras serão bloqueadas.
effect-disable_access = o acesso às suas assinaturas será bloqueado.
effect-suspend = suas assinaturas serão suspensas.
effect-cancel = suas assinaturas serão canceladas.

policy-title = Política de cobrança
policy-intro = Esta política explica quando enviamos avisos de pagamento e quando o acesso às suas assinaturas é afetado pela falta de pagamento. Cada fatura em aberto segue estas etapas, contadas a partir do seu próprio vencimento:
policy-when-before = { $days ->
    [one] 1 dia antes do vencimento
   *[other] { $days } dias antes do vencimento
}
policy-when-on = No dia do vencimento
policy-when-after = { $days ->
    [one] 1 dia após o vencimento
   *[other] { $days } dias após o vencimento
}
policy-step = { $when }: { $notice }. { $effect }
policy-min-notice = Uma etapa que afeta seus serviços nunca é aplicada antes que o aviso anterior tenha sido enviado há pelo menos { $days ->
    [one] 1 dia
   *[other] { $days } dias
}.
policy-restore = Quando todas as faturas vencidas forem pagas, o acesso bloqueado e as assinaturas suspensas são restabelecidos.
policy-no-cancel = Na sua nuvem, as assinaturas não são canceladas por falta de pagamento: o acesso permanece bloqueado até o pagamento da fatura.
policy-minimum = Faturas com menos de { $amount } em aberto não seguem estas etapas.

title-invoice_due_soon = um lembrete de pagamento
title-payment_overdue = um aviso de atraso
title-final_warning = um último aviso
title-purchases_blocked = um aviso de bloqueio de novas compras
title-access_disabled = um aviso de bloqueio de acesso
title-service_suspended = um aviso de suspensão das assinaturas
title-service_cancelled = um aviso de cancelamento das assinaturas

status-none = Seus serviços não são afetados.
status-block_new_purchases = Novas compras são bloqueadas; os serviços atuais continuam.
status-disable_access = O acesso às suas assinaturas é bloqueado.
status-suspend = Suas assinaturas são suspensas.
status-cancel = Suas assinaturas são canceladas.

# Ações tomadas em uma assinatura a partir de um caso.
action-suspend-subject = Sua assinatura { $offer } foi suspensa
action-suspend-body = Suspendemos sua assinatura { $offer } enquanto analisamos uma atividade incomum na sua conta. Seus dados foram mantidos. Entre em contato conosco para que possamos restaurá-la o quanto antes.
action-disable_access-subject = O acesso à sua assinatura { $offer } foi bloqueado
action-disable_access-body = Bloqueamos o acesso à sua assinatura { $offer } enquanto analisamos uma atividade incomum na sua conta. Seus dados foram mantidos. Entre em contato conosco para que possamos restaurá-lo o quanto antes.
action-reactivate-subject = Sua assinatura { $offer } está ativa novamente
action-reactivate-body = Sua assinatura { $offer } está ativa novamente. Obrigado pela paciência.
action-cancel-subject = Sua assinatura { $offer } foi cancelada
action-cancel-body = Cancelamos sua assinatura { $offer }. Entre em contato conosco se tiver dúvidas.
