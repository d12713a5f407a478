/*
 * api/docs_blob.S - embeds the reference page's script (Redoc's standalone
 * bundle) and its licence notice in the binary.
 *
 * Both come from the npm package pinned in openapi/package-lock.json,
 * installed into openapi/node_modules by make before this file is
 * assembled. Like the spec (api/openapi_blob.S), each is followed by a NUL.
 */
    .section .rodata
    .global api_docs_script
    .type api_docs_script, @object
api_docs_script:
    .incbin "openapi/node_modules/redoc/bundles/redoc.standalone.js"
    .byte 0
    .global api_docs_script_end
api_docs_script_end:
    .global api_docs_license
    .type api_docs_license, @object
api_docs_license:
    .incbin "openapi/node_modules/redoc/bundles/redoc.standalone.js.LICENSE.txt"
    .byte 0
    .global api_docs_license_end
api_docs_license_end:
    .section .note.GNU-stack,"",@progbits
