"""Writes to forms, fields, conflicts and submissions (DESIGN sections 5 and 8; issue 6).

    form = form_create(owner=ann, title="Sign-up", conflict_policy="manual")
    result = field_add(user=ann, form_id=form.pk, base_revision=0, client_msg_id="a-1",
                       key="email", type="email", label="E-mail", required=True)
    result.revision    # 1: every builder change is one revision of the form

One module per sub-domain, imported in this order (each only from those before it): ``events``
(groups, results, appending changes) and ``checks`` (input), ``forms`` (forms and members),
``builder`` (fields, conflicts, the form's own properties), ``fill`` (submissions).
Import from this package, not from its modules.
"""

from forms_live.services.builder import (
    conflict_resolve,
    field_add,
    field_change,
    field_move,
    field_remove,
    form_change,
)
from forms_live.services.events import (
    ChangeResult,
    dashboard_group,
    form_group,
    respondent_group,
    submission_stream,
)
from forms_live.services.fill import (
    SubmissionResult,
    form_viewed,
    submission_set_status,
    submission_start,
    submission_submit,
    submission_update,
)
from forms_live.services.forms import form_create, form_delete, member_remove, member_set

__all__ = [
    "ChangeResult",
    "SubmissionResult",
    "conflict_resolve",
    "dashboard_group",
    "field_add",
    "field_change",
    "field_move",
    "field_remove",
    "form_change",
    "form_create",
    "form_delete",
    "form_group",
    "form_viewed",
    "member_remove",
    "member_set",
    "respondent_group",
    "submission_set_status",
    "submission_start",
    "submission_stream",
    "submission_submit",
    "submission_update",
]
