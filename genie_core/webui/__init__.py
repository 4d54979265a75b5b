"""Browser pages: `genie webchat` (chat with a model) and `genie webui` (the training board).

``chat_page``, ``board``, ``train_tab`` and ``model_tabs`` hold the gradio layouts. These import no gradio at module
level, so they are tested without a browser: ``form`` (fields, defaults, config -> fields), ``run_config`` (fields
-> stage config, pipeline files), ``runs`` (submitting detached pipeline runs), ``run_index`` (every run in the runs
directory), ``run_files`` (progress, phase and logs from a stage's files), ``run_panel`` (what the run view shows),
``train_actions`` (the Train tab's buttons), ``board_state`` (the form and recent models between page loads),
``model_list`` (the model dropdown), ``preview`` (datasets rendered through a template) and ``common`` (allowed
folders, serving).
"""
