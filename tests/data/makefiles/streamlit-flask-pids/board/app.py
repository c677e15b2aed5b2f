import streamlit as st
st.title("board")
