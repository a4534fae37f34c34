greeting = Bonjour { $customer },
signoff = Cordialement,
    { $partner }

invoice_due_soon-subject = La facture { $invoice } arrive à échéance le { $due_date }
invoice_due_soon-body = La facture { $invoice } d’un montant de { $amount } arrive à échéance le { $due_date }. Merci de la régler d’ici là afin que vos services continuent sans interruption.
invoice_due_soon-late-subject = La facture { $invoice } était due le { $due_date }
invoice_due_soon-late-body = La facture { $invoice } d’un montant de { $amount } était due le { $due_date } et est en retard de { $days ->
    [one] 1 jour
   *[other] { $days } jours
}. Merci de la régler dès que possible afin que vos services continuent sans interruption.
payment_overdue-subject = La facture { $invoice } est en retard de paiement
payment_overdue-body = La facture { $invoice } d’un montant de { $amount } était due le { $due_date } et est maintenant en retard. Merci de la régler dès que possible.
final_warning-subject = Dernier avertissement : la facture { $invoice } est impayée
final_warning-body = La facture { $invoice } ({ $amount }, échéance le { $due_date }) reste impayée. Ceci est notre dernier avertissement avant que vos services ne soient affectés.
purchases_blocked-subject = Nouveaux achats bloqués : la facture { $invoice } est impayée
purchases_blocked-body = La facture { $invoice } ({ $amount }, échéance le { $due_date }) reste impayée.
access_disabled-subject = Accès bloqué : la facture { $invoice } est impayée
access_disabled-body = La facture { $invoice } ({ $amount }, échéance le { $due_date }) reste impayée.
service_suspended-subject = Abonnements suspendus : la facture { $invoice } est impayée
service_suspended-body = La facture { $invoice } ({ $amount }, échéance le { $due_date }) reste impayée.
service_cancelled-subject = Abonnements résiliés : la facture { $invoice } est impayée
service_cancelled-body = La facture { $invoice } ({ $amount }, échéance le { $due_date }) reste impayée.

applied-none = Vos services ne sont pas encore affectés.
applied-block_new_purchases = Les nouveaux achats sont bloqués jusqu’au paiement de la facture ; vos services actuels continuent.
applied-disable_access = L’accès à vos abonnements est désormais bloqué jusqu’au paiement de la facture.
applied-suspend = Vos abonnements sont désormais suspendus jusqu’au paiement de la facture.
applied-cancel = Vos abonnements sont désormais résiliés.
applied-awaiting = La facture étant impayée, vos abonnements peuvent désormais être restreints ; notre équipe vous le confirmera.

next-step = Si la facture est toujours impayée le { $date } : { $effect }
paid-already = Si vous avez déjà payé, merci, et veuillez ignorer cet avis.

effect-none = vous recevrez un nouvel avis.
effect-block_new_purchases = les nouveaux achats seront bloqués.
effect-disable_access = l’accès à vos abonnements sera bloqué.
effect-suspend = vos abonnements seront suspendus.
effect-cancel = vos abonnements seront résiliés.

policy-title = Politique de recouvrement
policy-intro = Cette politique indique quand nous envoyons des avis de paiement et quand l’accès à vos abonnements est affecté par un défaut de paiement. Chaque facture impayée suit ces étapes, comptées à partir de sa propre date d’échéance :
policy-when-before = { $days ->
    [one] 1 jour avant l’échéance
   *[other] { $days } jours avant l’échéance
}
policy-when-on = Le jour de l’échéance
policy-when-after = { $days ->
    [one] 1 jour après l’échéance
   *[other] { $days } jours après l’échéance
}
policy-step = { $when } : { $notice }. { $effect }
policy-min-notice = Une étape qui affecte vos services n’est jamais appliquée avant que l’avis précédent ait été envoyé depuis au moins { $days ->
    [one] 1 jour
   *[other] { $days } jours
}.
policy-restore = Lorsque toutes les factures en retard sont payées, l’accès bloqué et les abonnements suspendus sont rétablis.
policy-no-cancel = Sur votre cloud, les abonnements ne sont pas résiliés pour défaut de paiement : l’accès reste bloqué jusqu’au paiement de la facture.
policy-minimum = Les factures dont le montant restant dû est inférieur à { $amount } ne suivent pas ces étapes.

title-invoice_due_soon = un rappel de paiement
title-payment_overdue = un avis de retard
title-final_warning = un dernier avertissement
title-purchases_blocked = un avis de blocage des nouveaux achats
title-access_disabled = un avis de blocage de l’accès
title-service_suspended = un avis de suspension des abonnements
title-service_cancelled = un avis de résiliation des abonnements

status-none = Vos services ne sont pas affectés.
status-block_new_purchases = Les nouveaux achats sont bloqués ; les services actuels continuent.
status-disable_access = L’accès à vos abonnements est bloqué.
status-suspend = Vos abonnements sont suspendus.
status-cancel = Vos abonnements sont résiliés.

# Actions prises sur un abonnement depuis un dossier.
action-suspend-subject = Votre abonnement { $offer } est suspendu
action-suspend-body = Nous avons suspendu votre abonnement { $offer } le temps d'examiner une activité inhabituelle sur votre compte. Vos données sont conservées. Contactez-nous pour que nous puissions le rétablir au plus vite.
action-disable_access-subject = L'accès à votre abonnement { $offer } est bloqué
action-disable_access-body = Nous avons bloqué l'accès à votre abonnement { $offer } le temps d'examiner une activité inhabituelle sur votre compte. Vos données sont conservées. Contactez-nous pour que nous puissions le rétablir au plus vite.
action-reactivate-subject = Votre abonnement { $offer } est de nouveau actif
action-reactivate-body = Votre abonnement { $offer } est de nouveau actif. Merci de votre patience.
action-cancel-subject = Votre abonnement { $offer } est résilié
action-cancel-body = Nous avons résilié votre abonnement { $offer }. Contactez-nous pour toute question.
