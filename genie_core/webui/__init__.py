"""Browser pages: `genie webchat` (chat with a model) and `genie webui` (the training board).

``chat_page``, ``board``, ``train_tab`` and ``model_tabs`` hold the gradio layouts; ``run_config`` (form -> stage
config), ``runs`` (submitting and watching detached pipeline runs), ``preview`` (datasets rendered through a
template) and ``common`` (allowed folders, serving) import no gradio.
"""
