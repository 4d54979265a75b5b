"""Chat templates: named conversation formats that render text and encode prompt/response ids for training."""

from genie_core.template.base import Template, TokenizerTemplate
from genie_core.template.templates import TEMPLATES, get_template, list_templates, register_template

__all__ = ["TEMPLATES", "Template", "TokenizerTemplate", "get_template", "list_templates", "register_template"]
